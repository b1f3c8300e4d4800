"""The tamper-evident activity log: each company's rows chained by sha256 (issue 16).

Sealing happens after the fact, not in the write that inserts a row: chaining inline would read
the company's last row and hash on every INSERT, lining up every write of a company behind one
lock on the hottest paths. Instead `activity_seal` (run by `manage.py seal_activity` from cron)
takes a company's committed, unsealed rows and gives each the next place in the chain.

The verification contract (what `activity_verify` recomputes, and what anyone can recompute
from a dump of the table):

    hash(row) = sha256_hex(previous_hash + "\\n" + canonical(row))

where `previous_hash` is the hex hash of the row sealed just before it in the same company, or
`GENESIS` (64 zeros) for the company's first row, and `canonical(row)` is the UTF-8 bytes of the
compact JSON array (`separators=(",", ":")`, `ensure_ascii=False`, object keys sorted)

    [seal_seq, id, company_id, actor_type, actor_id, run_id, action, entity_type, entity_id,
     issue_id, details, created_at]

with `details` as the database gives it back and `created_at` in UTC as ISO 8601 with
microseconds (`2026-12-01T16:10:19.123456+00:00`). `seal_seq` counts from 1 with no gap.

The chain is in seal order, not creation order: a row whose transaction commits after a sealer
has run past later-created rows joins the chain at its end. The sealer holds the company row
(`FOR NO KEY UPDATE`, which the foreign-key checks of concurrent inserts do not wait for) for one
batch, so sealers on any number of hosts at once make one chain with no duplicate or skipped seq.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.db import transaction
from django.db.models import Count

from companies.models import ActivityEvent, Company

GENESIS = "0" * 64
BATCH = 1000

# The columns a seal covers, in their order in `canonical`.
SEALED_FIELDS = (
    "id",
    "company_id",
    "actor_type",
    "actor_id",
    "run_id",
    "action",
    "entity_type",
    "entity_id",
    "issue_id",
    "details",
    "created_at",
)


def canonical(seq: int, row: dict[str, Any]) -> bytes:
    """The bytes a row's seal covers: its place in the chain and every field that matters."""
    values = [row[name] for name in SEALED_FIELDS]
    values[-1] = row["created_at"].astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(
        [seq, *values], sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def chain_hash(previous: str, seq: int, row: dict[str, Any]) -> str:
    """The row's hash, chained to the hash of the row sealed before it."""
    return hashlib.sha256(previous.encode() + b"\n" + canonical(seq, row)).hexdigest()


def chain_head(company_id: str) -> tuple[int, str]:
    """The company's last sealed (seq, hash); `(0, GENESIS)` before its first seal."""
    head = (
        ActivityEvent.objects.filter(company_id=company_id, seal_seq__isnull=False)
        .order_by("-seal_seq")
        .values_list("seal_seq", "seal_hash")
        .first()
    )
    return head or (0, GENESIS)


def unsealed(company_id: str | None = None):
    """Rows not sealed yet (not protected yet), of one company or all."""
    rows = ActivityEvent.objects.filter(seal_seq__isnull=True)
    return rows.filter(company_id=company_id) if company_id else rows


def _seal_batch(company_id: str, batch: int) -> tuple[int, int, str]:
    """Seal up to `batch` of the company's oldest unsealed rows in one short transaction;
    answers (rows sealed, head seq, head hash)."""
    with transaction.atomic():
        # Only the company row, and nothing before it: writers lock issue → company → agent,
        # so holding the company alone cannot close a cycle. NO KEY UPDATE lets inserts that
        # point at the company (their foreign-key check takes KEY SHARE) go on meanwhile.
        locked = Company.objects.select_for_update(no_key=True).filter(pk=company_id)
        if not locked.values_list("pk", flat=True).first():
            return 0, 0, GENESIS  # the company was deleted, its log with it
        seq, previous = chain_head(company_id)
        rows = list(
            unsealed(company_id).order_by("created_at", "id").values(*SEALED_FIELDS)[:batch]
        )
        sealed = []
        for row in rows:
            seq += 1
            previous = chain_hash(previous, seq, row)
            sealed.append(ActivityEvent(pk=row["id"], seal_seq=seq, seal_hash=previous))
        ActivityEvent.objects.bulk_update(sealed, ["seal_seq", "seal_hash"], batch_size=500)
    return len(rows), seq, previous


def activity_seal(*, company_id: str | None = None, batch: int = BATCH) -> dict[str, Any]:
    """Seal every committed, unsealed activity row (of one company, or of all), in batches.

    Idempotent (a second run seals nothing new) and safe beside other sealers. Answers
    `{"sealed": N, "companies": {id: {"sealed", "seq", "hash"}}}` for each company it sealed
    rows of, with the chain's new head: worth logging somewhere the database admin cannot
    rewrite, since it is what shows a chain rewritten wholesale or cut short.
    """
    if company_id:
        company_ids = [company_id]
    else:
        company_ids = sorted(set(unsealed().values_list("company_id", flat=True).distinct()))
    companies: dict[str, dict[str, Any]] = {}
    total = 0
    for cid in company_ids:
        count = 0
        while True:
            n, seq, head = _seal_batch(cid, batch)
            count += n
            if n < batch:
                break
        if count:
            companies[cid] = {"sealed": count, "seq": seq, "hash": head}
            total += count
    return {"sealed": total, "companies": companies}


@dataclass
class Break:
    """The first place a company's chain does not hold."""

    company_id: str
    seq: int
    row_id: str | None
    problem: str  # "hash_mismatch" (row edited) | "seq_gap" (rows deleted)
    message: str

    def as_json(self) -> dict[str, Any]:
        return {
            "companyId": self.company_id,
            "seq": self.seq,
            "rowId": self.row_id,
            "problem": self.problem,
            "message": self.message,
        }


def _verify_company(company_id: str, chunk: int) -> tuple[int, str, Break | None]:
    """Walk one chain in seq order; answers (head seq, head hash, first break), the head being
    the last row that holds."""
    seq, previous = 0, GENESIS
    while True:
        rows = list(
            ActivityEvent.objects.filter(company_id=company_id, seal_seq__gt=seq)
            .order_by("seal_seq")
            .values("seal_seq", "seal_hash", *SEALED_FIELDS)[:chunk]
        )
        for row in rows:
            if row["seal_seq"] != seq + 1:
                missing = f"#{seq + 1}" + (
                    f"..#{row['seal_seq'] - 1}" if row["seal_seq"] > seq + 2 else ""
                )
                return seq, previous, Break(
                    company_id, seq + 1, None, "seq_gap",
                    f"sealed row(s) {missing} are missing (deleted); the chain resumes at "
                    f"#{row['seal_seq']} ({row['id']})",
                )  # fmt: skip
            expected = chain_hash(previous, row["seal_seq"], row)
            if row["seal_hash"] != expected:
                return seq, previous, Break(
                    company_id, row["seal_seq"], row["id"], "hash_mismatch",
                    f"row {row['id']} does not match its seal: the row (or its seal_hash) was "
                    "edited after it was sealed",
                )  # fmt: skip
            seq, previous = row["seal_seq"], row["seal_hash"]
        if len(rows) < chunk:
            return seq, previous, None


def activity_verify(*, company_id: str | None = None, chunk: int = 2000) -> dict[str, Any]:
    """Recompute every sealed row's hash, company by company; report each chain's first break.

    Answers `{"ok", "checked", "unsealed", "companies": {id: {"seq", "hash", "unsealed"}},
    "breaks": [...]}`. Unsealed rows are counted, not checked: nothing protects them yet. What
    a chain cannot show by itself: rows deleted from its end, or a chain rewritten wholesale
    (compare the heads with ones logged elsewhere).
    """
    companies = Company.objects.order_by("pk")
    if company_id:
        companies = companies.filter(pk=company_id)
    waiting = dict(
        unsealed(company_id)
        .order_by()
        .values("company_id")
        .annotate(n=Count("id"))
        .values_list("company_id", "n")
    )
    result: dict[str, Any] = {
        "ok": True,
        "checked": 0,
        "unsealed": 0,
        "companies": {},
        "breaks": [],
    }
    for cid in companies.values_list("pk", flat=True):
        seq, head, broken = _verify_company(cid, chunk)
        result["checked"] += seq
        result["unsealed"] += waiting.get(cid, 0)
        result["companies"][cid] = {"seq": seq, "hash": head, "unsealed": waiting.get(cid, 0)}
        if broken:
            result["ok"] = False
            result["breaks"].append(broken.as_json())
    return result
