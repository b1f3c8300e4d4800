"""The shape shared by our bearer-token authentication classes."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from paperclip.api import auth_failures

# Recording every use would turn each read into a write; a minute's precision is plenty.
LAST_USED_PRECISION = timedelta(seconds=60)


def bearer_token(request) -> str | None:
    parts = get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        return parts[1].decode()
    except UnicodeDecodeError:
        return None


def touch_last_used(queryset, row) -> None:
    """Record a key's use, at most once per LAST_USED_PRECISION.

    After the request commits, not inside it: a write inside would hold the key's row lock for
    the whole request and queue the same agent's concurrent requests behind it.
    """
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_PRECISION:
        transaction.on_commit(lambda: queryset.filter(pk=row.pk).update(last_used_at=now))


class BearerAuthentication(BaseAuthentication):
    """Answer 401 with `WWW-Authenticate: Bearer` when credentials are missing or wrong.

    A subclass that recognises a token as its own calls `presented` before looking it up, and
    raises `failed(...)` when it does not authenticate: failures are rate-limited per client
    address and per key prefix (`paperclip.api.auth_failures`).
    """

    # Whether the token's first characters name a key (`pcp_`, `pcb_`), so failures on them
    # count per prefix too; run tokens all begin with the same JWT header.
    limit_by_key_prefix = True

    def authenticate_header(self, request) -> str:
        return "Bearer"

    def presented(self, request, token: str) -> None:
        """429 before any lookup when the address or the key prefix is over its limit."""
        auth_failures.refuse_if_limited(request, token, by_prefix=self.limit_by_key_prefix)

    def failed(self, request, token: str) -> AuthenticationFailed:
        """The 401 to raise for `token`, its failure counted."""
        auth_failures.note_failure(request, token, by_prefix=self.limit_by_key_prefix)
        return AuthenticationFailed()
