"""Request body parsers for `/api`: what a body may hold before any view or query sees it.

PostgreSQL refuses NUL characters in text (and in `jsonb`), and a lone surrogate (JSON's
`"\ud800"`) cannot be encoded as UTF-8 for the database or the response, so either would be a
500 once it got as far as a query; and a JSON document nested a thousand levels deep overflows
Python's stack in the decoder, or later in whatever walks it. All are refused here, once, for
every endpoint:

- a string (a value or an object key) containing NUL or a lone surrogate → 400
  `validation_error` whose `details` names each one by its path in the body: `title`,
  `payload.note`, `goalIds[0]`;
- JSON nested deeper than `MAX_JSON_DEPTH` levels → 400 `parse_error`. The body itself is level
  1, so a JSON object field (`payload`, `adapterConfig`, `result`, ...) holds at most 31 more.

The same NUL rule covers form and multipart fields, and query parameters (see
`paperclip.api.middleware`).
"""

from __future__ import annotations

import math
import re
from typing import Any

from django.http import QueryDict
from rest_framework import parsers

from paperclip.errors import ValidationFailed

MAX_JSON_DEPTH = 32
NUL = "\x00"
NUL_MESSAGE = "NUL characters are not allowed."
SURROGATE_MESSAGE = "Unpaired surrogate characters are not allowed."
NOT_FINITE_MESSAGE = "Numbers must be finite (this one overflows a double)."
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Enough to show the client what is wrong without echoing a whole hostile body back.
MAX_REPORTED_FIELDS = 20


def printable(name: str) -> str:
    """A field name as it can be shown in an error: NULs and surrogates written out (`\\u0000`)."""
    return _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", name)


def unstorable(text: str) -> str | None:
    """Why the database could not store `text`, or None."""
    if _UNSTORABLE.search(text) is None:
        return None
    return NUL_MESSAGE if NUL in text else SURROGATE_MESSAGE


def too_deep() -> ValidationFailed:
    return ValidationFailed(
        f"Malformed request body: JSON nested deeper than {MAX_JSON_DEPTH} levels",
        code="parse_error",
        details={"maxDepth": MAX_JSON_DEPTH},
    )


def check_json(data: Any) -> None:
    """Refuse a parsed JSON document that holds a NUL or a lone surrogate anywhere, a number too
    large for a double, or nests too deeply.

    Iterative (an explicit stack), so walking a deep document cannot itself overflow. Paths use
    the names the client sent: `a.b` for object members, `a[0]` for list items; a NUL in the
    document's top-level scalar is reported under `nonFieldErrors`.
    """
    found: dict[str, list[str]] = {}
    stack: list[tuple[Any, str, int]] = [(data, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if problem := unstorable(value):
                found.setdefault(path or "nonFieldErrors", [problem])
            continue
        if isinstance(value, float) and not math.isfinite(value):
            # 1e309 parses to infinity, which no JSON column (nor the answer) can hold.
            found.setdefault(path or "nonFieldErrors", [NOT_FINITE_MESSAGE])
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise too_deep()
        children: list[tuple[Any, str, int]] = []
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{printable(key)}" if path else printable(key)
                if problem := unstorable(key):
                    found.setdefault(child, [problem])
                children.append((item, child, depth + 1))
        else:
            children = [(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
        stack.extend(reversed(children))  # popped in document order, so errors read in order
    if found:
        raise ValidationFailed(details=dict(list(found.items())[:MAX_REPORTED_FIELDS]))


def nul_fields(form: QueryDict) -> dict[str, list[str]]:
    """The fields of a form (or query string) whose name or a value holds a NUL."""
    found: dict[str, list[str]] = {}
    for name, values in form.lists():
        if NUL in name or any(isinstance(v, str) and NUL in v for v in values):
            found[printable(name)] = [NUL_MESSAGE]
            if len(found) == MAX_REPORTED_FIELDS:
                break
    return found


def check_form(form: QueryDict) -> None:
    if found := nul_fields(form):
        raise ValidationFailed(details=found)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing NULs and documents nested deeper than `MAX_JSON_DEPTH`."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:  # the C decoder gives up around 1,000 levels
            raise too_deep() from None
        check_json(data)
        return data


class FormParser(parsers.FormParser):
    """DRF's form parser, refusing NULs in field names and values."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        check_form(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, refusing NULs in the form fields (Django already strips
    non-printable characters from uploaded file names)."""

    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        check_form(parsed.data)
        return parsed
