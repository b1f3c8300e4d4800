"""The tables the `paperclip` package keeps for itself (none of the domain's)."""

from __future__ import annotations

from django.db import models


class AuthFailureCount(models.Model):
    """Failed authentications in one window, per client address or per key prefix.

    One row per counter, shared by every app server through the database, so a limit holds
    whatever the number of processes. `paperclip.api.auth_failures` increments it with one
    atomic upsert and reads which counters are over their limit; a row whose window has ended
    counts as absent (and is deleted when a new window starts).
    """

    # `address:<client address>` or `prefix:<the token's first 12 characters>`.
    key = models.CharField(max_length=80, primary_key=True)
    failures = models.PositiveIntegerField()
    # Unix seconds: when this window ends and the counter starts again from zero.
    window_ends = models.BigIntegerField()

    class Meta:
        indexes = [
            # Which counters are over their limit (... WHERE window_ends > now) and the cleanup
            # (DELETE ... WHERE window_ends <= now)
            models.Index(fields=["window_ends"], name="auth_failure_window_ends"),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.failures}"
