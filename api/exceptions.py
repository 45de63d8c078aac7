"""Every error of the API is JSON: ``{"detail", "code"}``, and ``errors`` by field."""

from rest_framework import exceptions, status
from rest_framework.views import exception_handler

from .inputs import Invalid


def handler(exc, context):
    if isinstance(exc, Invalid):
        exc = exceptions.ValidationError(exc.errors)
    response = exception_handler(exc, context)
    if response is None:
        return None  # a bug: Django's 500 page and the error log, as for the pages
    if isinstance(exc, exceptions.ValidationError):
        errors = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = {
            "detail": "The request has errors; see each field.",
            "code": "invalid",
            "errors": {key: [str(m) for m in value] for key, value in errors.items()},
        }
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = {
            "detail": str(detail),
            "code": codes if isinstance(codes, str) else "error",
        }
    if response.status_code == status.HTTP_429_TOO_MANY_REQUESTS:
        response.data["code"] = "rate_limited"
    return response


class BodyTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The body is too large; send large images as multipart files."
    default_code = "too_large"


class KeyReused(exceptions.APIException):
    """An Idempotency-Key sent again with another request (the IETF idempotency-key
    draft's answer: 422)."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = (
        "This Idempotency-Key was already used for a different request (another body or "
        "URL); nothing was done. Send a new key for a new request, or the same body to "
        "get the first answer again."
    )
    default_code = "idempotency_key_reused"
