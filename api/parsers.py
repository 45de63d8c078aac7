from django.conf import settings
from rest_framework.parsers import JSONParser

from .exceptions import BodyTooLarge


class CappedJSONParser(JSONParser):
    """JSON bodies (base64 images) up to ``API_MAX_JSON_BYTES``: Django's own cap applies
    only to form fields, and a JSON body is read whole into memory."""

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        length = int(request.META.get("CONTENT_LENGTH") or 0) if request else 0
        if length > settings.API_MAX_JSON_BYTES:
            raise BodyTooLarge()
        return super().parse(stream, media_type, parser_context)
