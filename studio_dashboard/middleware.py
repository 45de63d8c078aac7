"""The project's own middleware: what every request and response goes through."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.cache import patch_cache_control


def _megabytes(n):
    return f"{n / (1024 * 1024):.1f}".removesuffix(".0") + " MB"


class BodyLimitMiddleware:
    """Refuse a body over its cap from the Content-Length, before a byte of it is read.

    Django reads a request body whole once anything touches ``request.POST`` (CSRF does,
    in its ``process_view``, before any login check), spooling files to disk, and has no
    cap on files. So, first in the chain:

    * any body over ``REQUEST_MAX_UPLOAD_BYTES`` (the largest legitimate request) and any
      body without a Content-Length (chunked: Django would read none of it and see an
      empty form) is answered at once, before the session or anything else runs;
    * in ``process_view``, before CsrfViewMiddleware's, a body over
      ``REQUEST_MAX_BODY_BYTES`` is refused unless the view is one of
      ``REQUEST_UPLOAD_VIEWS`` and someone is signed in (a session or an API token).

    A refused body is never read: the server discards or drops it, nothing is spooled.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "HTTP_TRANSFER_ENCODING" in request.META and not request.META.get("CONTENT_LENGTH"):
            return self._refuse(
                request,
                411,
                "Send the body with a Content-Length header: a chunked body is not accepted.",
            )
        if self._length(request) > settings.REQUEST_MAX_UPLOAD_BYTES:
            return self._too_large(request, settings.REQUEST_MAX_UPLOAD_BYTES)
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        length = self._length(request)
        if length <= settings.REQUEST_MAX_BODY_BYTES:
            return None
        if request.resolver_match.view_name in settings.REQUEST_UPLOAD_VIEWS and (
            request.user.is_authenticated or "HTTP_AUTHORIZATION" in request.META
        ):
            return None  # an API token is checked by the view before the body is parsed
        return self._too_large(request, settings.REQUEST_MAX_BODY_BYTES)

    @staticmethod
    def _length(request):
        try:
            return int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0

    def _too_large(self, request, cap):
        images = settings.REFERENCE_IMAGE_MAX_UPLOAD_BYTES
        message = (
            f"The request is {_megabytes(self._length(request))}; this page accepts at most "
            f"{_megabytes(cap)}. Nothing was received. Reference images may be up to "
            f"{_megabytes(images)} each: choose smaller images and try again."
        )
        return self._refuse(request, 413, message)

    @staticmethod
    def _refuse(request, status, message):
        # Rendered without the request: no context processor may read the session or user.
        wants_json = "json" in request.META.get("HTTP_ACCEPT", "") or "json" in request.META.get(
            "CONTENT_TYPE", ""
        )
        if wants_json or request.path_info.startswith("/api/"):
            code = "too_large" if status == 413 else "length_required"
            return JsonResponse({"detail": message, "code": code}, status=status)
        html = render_to_string("body_refused.html", {"status": status, "message": message})
        return HttpResponse(html, status=status)


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
        if (
            # A request that carries a session is someone's: asking ``request.user`` here
            # would load the user for views that never needed them.
            settings.SESSION_COOKIE_NAME in request.COOKIES
            or "HTTP_AUTHORIZATION" in request.META
            or response.get("Content-Disposition", "").startswith("attachment")
        ):
            patch_cache_control(response, private=True)
        return response
