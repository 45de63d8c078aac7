"""Sessions that name their user in a column of their own, so that one query reads a
request's session, its user and what the page needs besides (studio_dashboard/auth.py).
"""

from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class Session(AbstractBaseSession):
    # The signed-in user's id, as the session's data holds it (None before sign-in).
    # Not a foreign key: a session outlives nothing it names, and the user's row is
    # joined on it only to read it in the same query.
    user_id = models.BigIntegerField(null=True, blank=True)

    @classmethod
    def get_session_store_class(cls):
        from .sessions import SessionStore

        return SessionStore

    class Meta(AbstractBaseSession.Meta):
        db_table = "accounts_session"
