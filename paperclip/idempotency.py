"""`Idempotency-Key` on every POST of both API dialects (DESIGN §9).

A client that may retry a POST sends `Idempotency-Key: <1-255 characters>`. Per credential owner
(the actor: an agent, a board user) and key, for 24 hours:

- the same method, path and body again → the first answer (status, body, the headers worth
  replaying), with `Idempotent-Replayed: true`;
- another method, path or body → 422 `idempotency_key_mismatch`;
- while the first request is still running → 409 `idempotency_key_in_use`.

Not kept, so a retry runs again: 5xx answers, and requests refused before they ran (400
validation or parse errors, 401, and the two idempotency errors, which are raised before a key
is claimed). Every other answer, 4xx included, is replayed. An expired row counts as absent.

How (`paperclip.api.viewsets.ScopedViewSet` calls these three hooks):
- `claim`, after authentication, permissions, throttles and the company check: INSERT the row
  (`running`) in a savepoint of the request's transaction (ATOMIC_REQUESTS). A concurrent request
  with the same key blocks on the unique index until the first commits, then finds its answer
  (the replay) or, for a view outside the request transaction, its running row (409). A
  savepoint is taken right after the claim so the view's writes can be undone on their own.
- `finish`, when the view has answered: the row becomes `done` with the answer, in the same
  transaction as the work, so the key and the object commit together or not at all. When the
  view raised a 4xx we keep, the exception handler has marked the request for rollback: the
  view's writes are rolled back to the savepoint and the claim kept with its answer.
- `abandon`, when the view raised something no handler renders (a 500): the request's rollback
  takes the claim with it.

A view that opted out of ATOMIC_REQUESTS (`/v1` bulk: each task its own transaction) claims in
autocommit: the running row is visible at once (a concurrent retry gets 409), and is deleted again
when the answer is not kept or the view fails.

The fingerprint is sha256 of the method, the full path (with its query) and the raw body bytes;
for a multipart upload (or a body already read) it is taken over the parsed fields and the files'
names and contents instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, IntegrityError, transaction
from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from paperclip.errors import Conflict, Unprocessable, validation_error

logger = logging.getLogger("paperclip.api")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
TTL = timedelta(hours=24)
# Statuses of a request refused before it ran: a retry with the same key runs again.
NOT_KEPT_STATUSES = frozenset({400, 401})
# Headers of the first answer a replay repeats.
KEPT_HEADERS = ("Location", "ETag", "Last-Modified")
# Attempts at claiming a key when its row vanishes or expires between our INSERT and our read.
CLAIM_ATTEMPTS = 3


@dataclass
class Claim:
    """A key this request holds: its row, and the savepoint after the claim (None outside a
    transaction)."""

    pk: int
    savepoint: str | None


class Replay(Exception):
    """The key's first answer: the view answers this instead of running (not an error)."""

    def __init__(self, response: Response):
        self.response = response
        super().__init__("Idempotent replay")


def claim(request, actor) -> Claim | None:
    """Claim the request's `Idempotency-Key` for `actor`, or None when it sent none.

    Raises `Replay` with the first answer, `Unprocessable` (mismatch), `Conflict` (in use) or
    `ValidationFailed` (a key too long or empty)."""
    from companies.models import IdempotencyKey  # paperclip/ must not import apps at load time

    key = request.headers.get(HEADER)
    if key is None or actor is None:  # no key, or nobody to keep it for
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise validation_error(HEADER, f"Must be 1 to {MAX_KEY_LENGTH} characters.")
    owner = f"{actor.type}:{actor.id}"
    digest = fingerprint(request)
    for _ in range(CLAIM_ATTEMPTS):
        now = timezone.now()
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    owner=owner, key=key, fingerprint=digest, created_at=now, expires_at=now + TTL
                )
        except IntegrityError:
            existing = IdempotencyKey.objects.filter(owner=owner, key=key).first()
            if existing is None:  # released by its request since our INSERT: try again
                continue
            if existing.expires_at <= now:  # expired: absent, so replace it
                IdempotencyKey.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
                continue
            if existing.fingerprint != digest:
                raise Unprocessable(
                    "This Idempotency-Key was used with another request",
                    code="idempotency_key_mismatch",
                ) from None
            if existing.state == IdempotencyKey.State.RUNNING:
                raise Conflict(
                    "A request with this Idempotency-Key is still running",
                    code="idempotency_key_in_use",
                ) from None
            raise Replay(replay(existing)) from None
        return Claim(pk=row.pk, savepoint=transaction.savepoint())
    raise Conflict(
        "A request with this Idempotency-Key is still running", code="idempotency_key_in_use"
    )


def replay(row) -> Response:
    """The stored answer, rendered again by the view's renderer (`/api` ids as UUIDs, `/v1` in
    its envelope with this request's id)."""
    response = Response(
        row.response_data,
        status=row.response_status,
        headers={**row.response_headers, REPLAYED_HEADER: "true"},
    )
    if row.response_meta is not None:
        response.meta = row.response_meta
    return response


def finish(held: Claim | None, response) -> None:
    """Keep the view's answer with the claimed key, or release the key when it is not kept."""
    from companies.models import IdempotencyKey

    if held is None:
        return
    kept = (
        isinstance(response, Response)
        and response.status_code < 500
        and response.status_code not in NOT_KEPT_STATUSES
    )
    connection = transaction.get_connection()
    if connection.in_atomic_block and connection.needs_rollback:
        # The exception handler marked the request for rollback (the view refused): a kept
        # answer undoes only the view's writes, the claim stays to be stored with it.
        if not kept or held.savepoint is None:
            return  # the request's rollback takes the claim with it
        transaction.set_rollback(False)
        transaction.savepoint_rollback(held.savepoint)
    rows = IdempotencyKey.objects.filter(pk=held.pk)
    if not kept:
        rows.delete()
        return
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    meta = getattr(response, "meta", None)
    rows.update(
        state=IdempotencyKey.State.DONE,
        response_status=response.status_code,
        response_data=_plain(response.data),
        response_headers=headers,
        response_meta=_plain(meta) if meta is not None else None,
    )


def abandon(held: Claim | None) -> None:
    """The view failed with no answer (a 500): release the key so a retry runs again."""
    from companies.models import IdempotencyKey

    if held is None or transaction.get_connection().in_atomic_block:
        return  # inside the request's transaction, its rollback takes the claim with it
    try:
        IdempotencyKey.objects.filter(pk=held.pk).delete()
    except DatabaseError:  # the database is what failed: the key expires in 24 h
        logger.warning("Could not release Idempotency-Key row %s", held.pk, exc_info=True)


def fingerprint(request) -> str:
    """sha256 of the method, the full path and the body (see the module docstring)."""
    digest = hashlib.sha256()
    for part in (request.method, request.get_full_path()):
        digest.update(part.encode())
        digest.update(b"\0")
    body = _raw_body(request)
    if body is not None:
        digest.update(b"raw\0")
        digest.update(body)
    else:
        digest.update(b"parsed\0")
        _digest_parsed(digest, request.data)
    return digest.hexdigest()


def _raw_body(request) -> bytes | None:
    """The body's bytes, or None for a multipart upload (its files may be on disk) or a body
    that cannot be read again."""
    django_request = getattr(request, "_request", request)
    if django_request.content_type.startswith("multipart/"):
        return None
    try:
        return django_request.body
    except (RawPostDataException, RequestDataTooBig):
        return None


def _digest_parsed(digest, data: Any) -> None:
    if hasattr(data, "lists"):  # a QueryDict: form fields and files, each possibly repeated
        items = sorted(data.lists(), key=lambda item: item[0])
    else:
        items = [("", [data])]
    for name, values in items:
        digest.update(f"{name}\0".encode())
        for value in values:
            if isinstance(value, UploadedFile):
                digest.update(f"file\0{value.name}\0{value.size}\0".encode())
                for chunk in value.chunks():
                    digest.update(chunk)
                value.seek(0)  # the view reads it next
            else:
                digest.update(json.dumps(value, cls=JSONEncoder, sort_keys=True).encode())
            digest.update(b"\0")


def _plain(data: Any) -> Any:
    """The data as JSON values, as the renderer would write them."""
    return json.loads(json.dumps(data, cls=JSONEncoder))
