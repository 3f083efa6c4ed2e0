"""API tokens: a machine's key to the REST API, acting as the user it belongs to.

Only the SHA-256 of a token is stored. The token is 32 random bytes, so a hash without
a salt is enough: nobody can try the 2^256 candidates, and looking a token up by its hash
keeps authentication to one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

# Recognisable in a leaked config file or a secret scanner's rules.
TOKEN_PREFIX = "fleet_"
# Characters kept in clear, so a user can tell their tokens apart in the admin.
SHOWN_CHARS = len(TOKEN_PREFIX) + 6
# A token used again within this interval is not written back: no UPDATE per request.
LAST_USED_PRECISION = timedelta(minutes=1)


def token_digest(plain: str) -> str:
    return hashlib.sha256(plain.encode()).hexdigest()


class ApiToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What uses it, e.g. “CI pipeline”.")
    prefix = models.CharField(max_length=SHOWN_CHARS, editable=False)
    key_hash = models.CharField("SHA-256", max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField("expires", null=True, blank=True,
                                      help_text="Blank: valid until revoked.")
    revoked_at = models.DateTimeField("revoked", null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField("last used", null=True, blank=True, editable=False,
                                        help_text="To the minute.")

    class Meta:
        app_label = "stations"
        verbose_name = "API token"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    def issue(self) -> str:
        """Give an unsaved token its secret; returns the plain token (shown once)."""
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.prefix = plain[:SHOWN_CHARS]
        self.key_hash = token_digest(plain)
        return plain

    @classmethod
    def create_for(cls, user, name: str, **fields) -> tuple[ApiToken, str]:
        token = cls(user=user, name=name, **fields)
        plain = token.issue()
        token.save()
        return token, plain

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def revoke(self) -> None:
        if self.revoked_at is None:
            self.revoked_at = timezone.now()
            ApiToken.objects.filter(pk=self.pk, revoked_at=None).update(revoked_at=self.revoked_at)

    @classmethod
    def authenticate(cls, plain: str) -> ApiToken | None:
        """The active token with this secret (its last use recorded), or None."""
        token = (cls.objects.select_related("user").filter(key_hash=token_digest(plain))
                 .first())
        if token is None or token.state != "active" or not token.user.is_active:
            return None
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION:
            token.last_used_at = now
            cls.objects.filter(pk=token.pk).update(last_used_at=now)
        return token
