"""What Django's error pages and error mails may show of the settings and the request.

Django hides a setting whose *name* looks secret (``SECRET_KEY``, ``PASSWORD``...), but
``DATABASE_URL``, ``REDIS_URL``, ``CELERY_BROKER_URL`` and ``CACHES["default"]["LOCATION"]``
carry their password inside the value, and runserver copies the environment into
``request.META``. This filter also masks the credentials of any URL-shaped value,
wherever it sits (settings, nested dicts and lists, request headers and environment).
"""

import re

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@host or scheme://token@host: the userinfo part of a URL.
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]+)@", re.I)
# ?password=...&token=... in a query string.
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;][^=&;#\s]*(?:pass|secret|token|key|auth)[^=&;#\s]*)=(?P<value>[^&;#\s]*)",
    re.I,
)


class URLCredentialsFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: the password (or bare token) of every URL is masked.

    ``postgres://studio:hunter2@db/studio`` shows as ``postgres://studio:********@db/studio``;
    a userinfo without a colon (``https://TOKEN@host``) is masked whole, since it is often
    a token; a query parameter named like a secret (``?password=``) loses its value.
    """

    def cleanse_setting(self, key, value):
        # Django recurses into dicts, lists and tuples through this same method.
        cleansed = super().cleanse_setting(key, value)
        if isinstance(cleansed, str) and "://" in cleansed:
            cleansed = _USERINFO.sub(self._mask_userinfo, cleansed)
            cleansed = _QUERY_SECRET.sub(
                lambda m: f"{m['name']}={self.cleansed_substitute}", cleansed
            )
        return cleansed

    def _mask_userinfo(self, match):
        user, colon, _password = match["userinfo"].partition(":")
        masked = f"{user}:{self.cleansed_substitute}" if colon else self.cleansed_substitute
        return f"{match['scheme']}{masked}@"
