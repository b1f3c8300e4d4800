"""Prefixed, k-sortable ids (`iss_01j...`), the database's primary keys, and their two wire forms.

A ULID sorts by creation time, so ids make stable cursors and readable logs; the prefix tells a
reader (and a validator) what kind of object an id names. The same 128 bits can be written as a
UUID (`01a230d4-70fe-...`, what Paperclip's own clients send, DESIGN §5): `parse_id` is the one
place that reads either form into the stored one.
"""

from __future__ import annotations

import re
import uuid

from django.db import models
from ulid import ULID

PREFIXED_FORM = r"[a-z]{2,3}_[0-9a-z]{26}"
UUID_FORM = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"
ID_PATTERN = re.compile(rf"^{PREFIXED_FORM}$")
UUID_PATTERN = re.compile(rf"^{UUID_FORM}$")
# An id in either form inside text (a mention link), for parse_id to read.
EITHER_FORM = rf"(?:{PREFIXED_FORM}|{UUID_FORM})"


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"


def looks_like_id(value: str, prefix: str) -> bool:
    """Whether `value` names an object of kind `prefix`, in either wire form."""
    return parse_id(value, prefix) is not None


def parse_id(value: object, prefix: str) -> str | None:
    """The stored id (`prefix_<ulid>`) that `value` writes, as `prefix_<ulid>` or as a UUID; None
    when it is neither (or names another kind of object), so callers answer 400 or 404."""
    if not isinstance(value, str):
        return None
    if ID_PATTERN.match(value):
        return value if value.startswith(f"{prefix}_") else None
    ulid = ulid_of_uuid(value)
    return f"{prefix}_{ulid}" if ulid else None


def ulid_of_uuid(value: str) -> str | None:
    """The text every stored id of these 128 bits ends with, when `value` is a UUID."""
    if not UUID_PATTERN.match(value):
        return None
    return str(ULID.from_uuid(uuid.UUID(value))).lower()


def ids_of_any_kind(value: object) -> list[str]:
    """The stored ids `value` may write when the kind of object is not known (an activity row's
    entity): itself if prefixed, the same bits in every kind if a UUID; none if neither."""
    if not isinstance(value, str):
        return []
    if ID_PATTERN.match(value):
        return [value]
    ulid = ulid_of_uuid(value)
    return [f"{prefix}_{ulid}" for prefix in sorted(PREFIXES)] if ulid else []


def as_uuid(stored_id: str) -> str:
    """The UUID form of a stored id (`iss_01m8...` → `01a230d4-...`)."""
    return str(ULID.from_str(stored_id.split("_", 1)[1].upper()).to_uuid())


# Every kind of object: the prefixes of the primary keys declared (PrefixedIdField registers).
PREFIXES: set[str] = set()


class PrefixedIdField(models.CharField):
    """A primary key `<prefix>_<ulid>` generated on creation."""

    def __init__(self, prefix: str, *args, **kwargs):
        self.prefix = prefix
        PREFIXES.add(prefix)
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("primary_key", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        for key, default in (("max_length", 32), ("primary_key", True), ("editable", False)):
            if kwargs.get(key) == default:
                kwargs.pop(key)
        return name, path, args, kwargs

    def get_default(self):
        return new_id(self.prefix)
