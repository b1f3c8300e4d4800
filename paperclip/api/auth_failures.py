"""Rate limits on failed authentications, per client address and per key prefix.

A bearer token that fails (an unknown or revoked `pcp_` key or `pcb_` token, a forged or expired
run token, a terminated agent's key) counts one failure against the client's address and, for
keys, against the token's first 12 characters (what `token_prefix` keeps: one leaked prefix
brute-forced from many addresses is limited too; run tokens all begin alike, so only their
address counts). Once a counter reaches its limit within its window, every bearer token from
that address or with that prefix answers 429 `too_many_auth_failures` with `Retry-After` (the
seconds until the window ends) *before* it is looked up, a valid one included: the address is
what is limited, and a blocked client must learn nothing from its next guesses. Successful
authentications are never counted. A limit of 0 turns its counter off (settings
PAPERCLIP_AUTH_FAILURE_LIMIT, _PREFIX_LIMIT, _WINDOW_SECONDS). The price of the prefix limit:
whoever knows a key's prefix (the admin shows it) can keep that key refused, one window at a
time, by failing with it; an operator who would rather not sets the prefix limit to 0.

How, across any number of app servers:
- The counters are rows of `paperclip.models.AuthFailureCount` in the database every server
  shares, incremented by one atomic upsert (no lost counts under concurrency). They are written
  by `AuthFailureMiddleware` after the view: the request's transaction (ATOMIC_REQUESTS) is
  rolled back on the 401, and the count with it if it were written there.
- The check (`refuse_if_limited`, called by the bearer classes once they recognise a token)
  must not cost a query per request, so each process keeps which counters are over their limit,
  read at most every PAPERCLIP_AUTH_CACHE_SECONDS, as it does for agent keys. The process that
  counts a failure learns the counter's total from the upsert at once, so past the limit each
  process lets at most one more guess through; a valid key from a blocked address may still pass
  on another process until its next read.

The client's address is REMOTE_ADDR, or with PAPERCLIP_TRUSTED_PROXIES = N > 0 the address the
outermost of those N proxies saw (the N-th entry of X-Forwarded-For from the right: each proxy
appends its peer, so what the client itself wrote is further left and never trusted).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.http import HttpRequest, HttpResponse

from paperclip.errors import TooManyRequests

# How much of a token names the key it claims to be (`HashedToken.token_prefix`).
KEY_PREFIX_LENGTH = 12
ADDRESS_MAX_LENGTH = 64
# Where a bearer class leaves a failure for AuthFailureMiddleware to count.
NOTED = "paperclip_auth_failure"


def _address_key(address: str) -> str:
    return f"address:{address[:ADDRESS_MAX_LENGTH]}"


def _prefix_key(token: str) -> str:
    return f"prefix:{token[:KEY_PREFIX_LENGTH]}"


def _limits() -> dict[str, int]:
    """The limit of each kind of counter that is on (a window of 0 turns both off)."""
    if settings.PAPERCLIP_AUTH_FAILURE_WINDOW_SECONDS <= 0:
        return {}
    limits = {
        "address:": settings.PAPERCLIP_AUTH_FAILURE_LIMIT,
        "prefix:": settings.PAPERCLIP_AUTH_FAILURE_PREFIX_LIMIT,
    }
    return {kind: limit for kind, limit in limits.items() if limit > 0}


def _counters(request, token: str, by_prefix: bool) -> list[str]:
    """The keys of the counters a failure of `token` on `request` counts against (those on)."""
    limits = _limits()
    keys = []
    if "address:" in limits:
        keys.append(_address_key(client_address(request)))
    if by_prefix and "prefix:" in limits:
        keys.append(_prefix_key(token))
    return keys


def client_address(request) -> str:
    """Who sent the request: REMOTE_ADDR, or behind PAPERCLIP_TRUSTED_PROXIES proxies the
    address the outermost of them saw."""
    meta = getattr(request, "_request", request).META
    remote = meta.get("REMOTE_ADDR", "")
    trusted = settings.PAPERCLIP_TRUSTED_PROXIES
    if trusted <= 0:
        return remote
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    hops = [hop for hop in hops if hop]
    # Fewer entries than proxies: the request did not come through all of them.
    return hops[-trusted] if len(hops) >= trusted else remote


class _Blocked:
    """What this process knows is over its limit: counter key → the Unix second its window
    ends. Read from the table at most every PAPERCLIP_AUTH_CACHE_SECONDS; the failures this
    process counts update it at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.until: dict[str, int] = {}
        self.read_at: float | None = None

    def forget(self, *, read_now: bool = False) -> None:
        with self._lock:
            self.until = {}
            self.read_at = time.monotonic() if read_now else None

    def current(self) -> dict[str, int]:
        seconds = settings.PAPERCLIP_AUTH_CACHE_SECONDS
        if self.read_at is None or time.monotonic() - self.read_at >= seconds:
            self._read()
        return self.until

    def _read(self) -> None:
        from paperclip.models import AuthFailureCount  # paperclip/ must not import models early

        over = Q()
        for kind, limit in _limits().items():
            over |= Q(key__startswith=kind, failures__gte=limit)
        rows = AuthFailureCount.objects.filter(over, window_ends__gt=int(time.time()))
        until = dict(rows.values_list("key", "window_ends"))
        with self._lock:
            self.until = until
            self.read_at = time.monotonic()

    def add(self, key: str, window_ends: int) -> None:
        with self._lock:
            self.until = {**self.until, key: window_ends}


_blocked = _Blocked()


def forget_blocks(*, nothing_blocked: bool = False) -> None:
    """Drop what this process knows is blocked, so its next check reads the table; with
    `nothing_blocked`, know instead that nothing is (what the tests start from: no rows)."""
    _blocked.forget(read_now=nothing_blocked)


def refuse_if_limited(request, token: str, *, by_prefix: bool) -> None:
    """Raise TooManyRequests when the request's address (or, `by_prefix`, the token's key
    prefix) is over its failure limit. Called before the token is looked up."""
    keys = _counters(request, token, by_prefix)
    if not keys:
        return
    blocked = _blocked.current()
    now = time.time()
    ends = [blocked[key] for key in keys if blocked.get(key, 0) > now]
    if not ends:
        return
    retry_after = max(1, math.ceil(max(ends) - now))
    raise TooManyRequests(
        "Too many failed authentications; retry later",
        code="too_many_auth_failures",
        retry_after=retry_after,
        details={"retryAfter": retry_after},
    )


def note_failure(request, token: str, *, by_prefix: bool) -> None:
    """Leave the failure of `token` for AuthFailureMiddleware to count once the request's
    transaction is over."""
    keys = _counters(request, token, by_prefix)
    if keys:
        setattr(getattr(request, "_request", request), NOTED, keys)


def count_failure(keys: list[str]) -> None:
    """Add one failure to each counter: one atomic upsert each, which starts a new window when
    the last one has ended. Outside any transaction of the request's, so a rollback keeps it."""
    from paperclip.models import AuthFailureCount

    quote = connection.ops.quote_name
    table, key_, failures_, ends = (
        quote(name) for name in (AuthFailureCount._meta.db_table, "key", "failures", "window_ends")
    )
    live = f"{table}.{ends} > %s"
    sql = (
        f"INSERT INTO {table} ({key_}, {failures_}, {ends}) VALUES (%s, 1, %s) "
        f"ON CONFLICT ({key_}) DO UPDATE SET "
        f"{failures_} = CASE WHEN {live} THEN {table}.{failures_} + 1 ELSE 1 END, "
        f"{ends} = CASE WHEN {live} THEN {table}.{ends} ELSE excluded.{ends} END "
        f"RETURNING {failures_}, {ends}"
    )
    limits = _limits()
    now = int(time.time())
    new_window_ends = now + settings.PAPERCLIP_AUTH_FAILURE_WINDOW_SECONDS
    started = False
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute(sql, [key, new_window_ends, now, now])
            failures, window_ends = cursor.fetchone()
            started = started or failures == 1
            limit = next((limit for kind, limit in limits.items() if key.startswith(kind)), 0)
            if limit and failures >= limit:
                _blocked.add(key, window_ends)
    if started:
        # A new counter: rows whose window has ended go, so the table holds live windows only.
        AuthFailureCount.objects.filter(window_ends__lte=now).delete()


class AuthFailureMiddleware:
    """Counts the failures the bearer classes noted, after the view and its transaction."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        keys = getattr(request, NOTED, None)
        if keys:
            count_failure(keys)
        return response
