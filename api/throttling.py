"""Each token's own request rate (``API_TOKEN_RATE``); over it, 429 with Retry-After.

DRF's throttle keeps its history in Django's cache, which is Redis shared by every
web process in production, so the limit holds across processes. Session requests
(the pages' own scripts) are not limited here.
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from .models import ApiToken


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}

    def get_rate(self):
        # Read at each request, not at import, so a deployment (or a test) can change it.
        return settings.API_TOKEN_RATE
