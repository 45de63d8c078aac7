"""The session engine (``SESSION_ENGINE = "accounts.sessions"``): Django's database
sessions, whose rows also name their user (``Session.user_id``).

On PostgreSQL, a request's session is read in the same query as its user, their
permissions, a full page's figures and the view's row (``auth.read_session``):
one query for all of it, and no other store to ask. Without a request in view
(a management command, a test's ``client.session``) or on another database it
is read as Django reads it.
"""

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.db import connection

from studio_dashboard.pagecache import Recent

# Session data this process has decoded, by its signed text: decoding (checking the
# signature, then parsing) is a pure function of that text and the keys, so a row read
# again unchanged, as every request of a signed-in person reads it, needs no second
# check. Only data of plain values is kept, and each caller gets its own copy.
_decoded = Recent(size=2000, ttl=300.0)
_PLAIN = (str, int, float, bool, type(None))


def forget_decoded():
    """Drop the session data this process decoded (for tests)."""
    _decoded.clear()


class SessionStore(DatabaseStore):
    @classmethod
    def get_model_class(cls):
        from .models import Session

        return Session

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        try:
            session.user_id = int(data.get(SESSION_KEY))
        except (TypeError, ValueError):
            session.user_id = None
        return session

    def load(self):
        from studio_dashboard import auth

        request = auth.current_request.get(None)
        if (
            request is None
            or getattr(request, "session", None) is not self  # another session than its own
            or connection.vendor != "postgresql"
            or self.session_key is None
        ):
            return super().load()
        session_data = auth.read_session(request, self.session_key, self.model)
        if session_data is None:
            self._session_key = None
            return {}
        return self.decode(session_data)

    def decode(self, session_data):
        key = (settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS), session_data)
        found = _decoded.get(key)
        if found is not None:
            return dict(found)
        data = super().decode(session_data)
        if data and all(isinstance(value, _PLAIN) for value in data.values()):
            _decoded.set(key, dict(data))
        return data
