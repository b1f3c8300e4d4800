"""Keys derived from SECRET_KEY, one per purpose.

Signing everything with SECRET_KEY itself would let a signature made for one purpose pass for
another (a session hash, a password-reset token and a run token all share one secret). Each
purpose gets its own key instead: an HMAC of the purpose under the secret, as Django's
`salted_hmac` derives its keys.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.crypto import salted_hmac


def derived_key(purpose: str, *, secret: str | None = None) -> bytes:
    """The key for `purpose` (a dotted name such as `paperclip.run-token`) under `secret`,
    SECRET_KEY by default; pass each of SECRET_KEY_FALLBACKS to check what older keys signed."""
    return salted_hmac(purpose, "signing-key", secret=secret, algorithm="sha256").digest()


def derived_keys(purpose: str) -> list[bytes]:
    """The key for `purpose` under SECRET_KEY, then under each of SECRET_KEY_FALLBACKS: what a
    verifier accepts while a rotated key's signatures are still live."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [derived_key(purpose, secret=secret) for secret in secrets]
