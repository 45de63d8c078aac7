"""Personal API tokens.

A token is shown once, when it is made: only its SHA-256 is stored. The secret is
32 random bytes, so a plain hash is enough (a slow password hash would only slow
every API request); the visible prefix lets a member tell their tokens apart and
lets us find the row by an index before comparing digests.
"""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "sdt_"
# last_used_at is written at most this often per token (seconds): a script polling a
# generation every few seconds should not turn every read into a write.
LAST_USED_RESOLUTION = 60


def digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def issue(self, user, name):
        """Make a token for ``user``; returns (token, the secret to show once)."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = self.create(user=user, name=name, prefix=secret[:12], digest=digest(secret))
        return token, secret

    def active(self):
        return self.filter(revoked_at__isnull=True)

    def authenticate(self, secret):
        """The active token whose secret this is, with its user; None for any other string."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        token = (
            self.active()
            .select_related("user")
            .filter(prefix=secret[:12], digest=digest(secret))
            .first()
        )
        if token is None or not token.user.is_active:
            return None
        token.touch()
        return token


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=12, db_index=True)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self):
        return self.revoked_at is None

    def touch(self, now=None):
        """Record a use; one write a minute at most (see LAST_USED_RESOLUTION)."""
        now = now or timezone.now()
        if (
            self.last_used_at is None
            or (now - self.last_used_at).total_seconds() >= LAST_USED_RESOLUTION
        ):
            ApiToken.objects.filter(pk=self.pk).update(last_used_at=now)
            self.last_used_at = now

    def revoke(self):
        """Stop the token working at once; revoking twice changes nothing."""
        now = timezone.now()
        ApiToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now)
        self.refresh_from_db(fields=["revoked_at"])


class IdempotencyKeyQuerySet(models.QuerySet):
    def claim(self, user, token, fingerprint):
        """Remember what the key naming ``token`` first asked for: "new" for its first
        use, "same" when it asked for the same then (a retry), "other" when it asked for
        something else (the caller refuses the reuse).

        Called inside the transaction that makes the request's row: a request that
        fails rolls its record back with it, so a corrected retry may use the key again.
        Two concurrent first uses meet on the unique token: the second waits for the
        first to commit and then compares with it.
        """
        record, created = self.get_or_create(
            user=user, token=token, defaults={"fingerprint": fingerprint}
        )
        if created:
            return "new"
        return "same" if record.fingerprint == fingerprint else "other"


class IdempotencyKey(models.Model):
    """An Idempotency-Key's first request: the SHA-256 of its method, path and canonical
    body (``inputs.fingerprint``), so that the key sent again with another body is refused
    (422) instead of answered with the first request's result. The key itself is not
    stored: ``token`` is the form token it names (``inputs.form_token``, user and key)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.UUIDField(unique=True)
    fingerprint = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    objects = IdempotencyKeyQuerySet.as_manager()

    def __str__(self):
        return f"idempotency key {self.token} of user {self.user_id}"
