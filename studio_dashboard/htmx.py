"""django-htmx's ``request.htmx``, reading its few headers from ``request.META``.

``HtmxDetails`` reads them through ``request.headers``, which is built on first use from
every header the browser sent; a polled status card, which asks which target it is, paid
for that on every poll."""

from urllib.parse import unquote

from django_htmx import middleware


class HtmxDetails(middleware.HtmxDetails):
    def _get_header_value(self, name):
        key = "HTTP_" + name.upper().replace("-", "_")
        value = self.request.META.get(key) or None
        if value and self.request.META.get(key + "_URI_AUTOENCODED") == "true":
            value = unquote(value)
        return value


class HtmxMiddleware(middleware.HtmxMiddleware):
    """``django_htmx.middleware.HtmxMiddleware`` with the ``HtmxDetails`` above (sync only,
    like the rest of the dashboard)."""

    def __init__(self, get_response):
        super().__init__(get_response)
        assert not self.async_mode, "the dashboard's middleware is synchronous"

    def __call__(self, request):
        request.htmx = HtmxDetails(request)
        return self.get_response(request)
