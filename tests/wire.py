"""Ids as `/api` writes them (UUIDs) and back, for comparing responses with database rows."""

from __future__ import annotations

from django.db import models

from paperclip.ids import as_uuid, parse_id


def wire(value):
    """The UUID `/api` writes for a model instance or a stored id (`agt_01m8...`); lists and
    None map through."""
    if value is None:
        return None
    if isinstance(value, (list, tuple, set)):
        return [wire(item) for item in value]
    if isinstance(value, models.Model):
        value = value.pk
    return as_uuid(value)


def stored(value: str, model: type[models.Model]) -> str:
    """The primary key of `model` that an id read from `/api` names."""
    pk = parse_id(value, model._meta.pk.prefix)
    assert pk is not None, f"{value!r} is not an id of a {model.__name__}"
    return pk
