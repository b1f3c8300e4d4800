"""Prefixed, k-sortable ids (`iss_01j...`), the wire's and the database's primary keys.

A ULID sorts by creation time, so ids make stable cursors and readable logs; the prefix tells a
reader (and a validator) what kind of object an id names.
"""

from __future__ import annotations

import re

from django.db import models
from ulid import ULID

ID_PATTERN = re.compile(r"^[a-z]{2,3}_[0-9a-z]{26}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{str(ULID()).lower()}"


def looks_like_id(value: str, prefix: str) -> bool:
    return bool(ID_PATTERN.match(value)) and value.startswith(f"{prefix}_")


class PrefixedIdField(models.CharField):
    """A primary key `<prefix>_<ulid>` generated on creation."""

    def __init__(self, prefix: str, *args, **kwargs):
        self.prefix = prefix
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
