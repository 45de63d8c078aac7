"""The project's own middleware: what every request and response goes through."""

from django.utils.cache import patch_cache_control


class PrivateCacheMiddleware:
    """``Cache-Control: private`` on every answer to someone signed in, and every download.

    ``Vary: Cookie`` alone lets a shared proxy keep a signed-in page for everyone who
    sends the same cookie header, and an API request carries no cookie at all. Placed
    after AuthenticationMiddleware; DRF sets ``request.user`` for token requests too.
    ``patch_cache_control`` keeps what a view set (the status card's ``no-cache``, its
    ETag and 304s) and drops a conflicting ``public``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (
            (user is not None and user.is_authenticated)
            or "HTTP_AUTHORIZATION" in request.META
            or response.get("Content-Disposition", "").startswith("attachment")
        ):
            patch_cache_control(response, private=True)
        return response
