"""How `/api` writes ids: as UUIDs, Paperclip's form (DESIGN §5).

The database keeps one id per object (`iss_01m8...`, a prefixed ULID); `/api` writes the same 128
bits as a lowercase UUID wherever an id appears. This module is the one place that does it: the
`/api` renderer passes every response body through `to_wire`, the wake delivery its payload, the
pagination its cursors. Reading either form back is `paperclip.ids.parse_id`'s.

Which values are ids is told by their key, as Paperclip names them: `id`, `...Id`, `...Ids` and
`reportsTo`. Everything under such a key is an id or made of ids (a list, or the `from`/`to` of
a change in the activity log), and is rewritten where it is a stored id of the kind the key
names (`assigneeAgentId`: an agent's; `id`, `entityId`: any). Free text (a title, a comment body)
is never under such a key, and a client's own input echoed in an error (`runId: "iss_..."`) is
not of the key's kind, so neither is ever rewritten.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from paperclip.ids import ID_PATTERN, as_uuid

# The prefix of the objects a key's last word names (`checkoutRunId` → run); keys whose last
# word is not here (`id`, `entityId`, `parentId`) may name any kind.
PREFIX_OF_KIND = {
    "Agent": "agt",
    "Approval": "apr",
    "Attachment": "att",
    "Comment": "cmt",
    "Company": "cmp",
    "Document": "doc",
    "Goal": "gol",
    "Issue": "iss",
    "Key": "key",
    "Label": "lbl",
    "Project": "prj",
    "Revision": "rev",
    "Run": "run",
    "Team": "tm",
    "User": "usr",
}
ANY = ""
# Id fields whose names do not end in Id (Paperclip's `reportsTo`, the comments' `after`
# anchor), and one that does but names no object (a request's id: `req_...` stays as logged).
ID_KEYS = {"id": ANY, "reportsTo": "agt", "after": "cmt", "requestId": None}
_LAST_WORD = re.compile(r"(?:^|[A-Z])[a-z]*(?=Ids?$)")


def wire_id(value: Any, prefix: str = ANY) -> Any:
    """The UUID form of a stored id (of kind `prefix`, when given); anything else unchanged."""
    if not isinstance(value, str):
        return value
    return _wire_str(value, prefix)


# A page repeats the same ids (its company, its agents) and the same keys on every row: both
# conversions are pure, so each is worked out once per process.
@lru_cache(maxsize=65_536)
def _wire_str(value: str, prefix: str) -> str:
    if not ID_PATTERN.match(value):
        return value
    if prefix == ANY or value.startswith(f"{prefix}_"):
        try:
            return as_uuid(value)
        except ValueError:  # id-shaped but not a ULID (`abc_` + 26 letters that are not base32)
            return value
    return value


@lru_cache(maxsize=4096)
def id_kind(key: Any) -> str | None:
    """The prefix of the ids under `key` (ANY when any kind), or None when it names no ids."""
    if not isinstance(key, str):
        return None
    if key in ID_KEYS:
        return ID_KEYS[key]
    if not key.endswith(("Id", "Ids")):
        return None
    word = _LAST_WORD.search(key)
    return PREFIX_OF_KIND.get(word.group(0).capitalize(), ANY) if word else ANY


def names_ids(key: Any) -> bool:
    return id_kind(key) is not None


def to_wire(data: Any, kind: str | None = None) -> Any:
    """`data` (a response body: dicts, lists, scalars) with every id written as a UUID; `kind`:
    `data` sits under a key naming ids of that kind."""
    if isinstance(data, dict):
        return {
            key: to_wire(value, kind if kind is not None else id_kind(key))
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [to_wire(item, kind) for item in data]
    return data if kind is None else wire_id(data, kind)
