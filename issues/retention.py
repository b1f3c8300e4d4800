"""Retention (DESIGN §12): what `manage.py prune` trims and deletes, and how.

Per kind, "older than the cut-off" means:

- runs: finished before it → the row stays (costs and the activity log point at it), its stored
  log file goes (from storage, once the batch has committed) and its bulky fields are reset
  (`agents.models.PRUNED_RUN_FIELDS`);
- webhook delivery attempts: settled (succeeded or failed) and queued before it → deleted;
- wake delivery attempts: made before it, of a run no longer queued or running → deleted;
- outbox events: dispatched before it → deleted;
- idempotency keys: expired → deleted, whatever the cut-off (an expired key counts as absent);
- task results of the database task backend: finished before it → deleted;
- attachment files no attachment row names (an upload whose worker died between storing its
  file and committing its row, DESIGN §6): deleted once older than `ORPHAN_GRACE`, whatever
  the cut-off (an upload in flight has stored its file but not yet committed its row).

Nothing pending or live is touched (a queued or running run, a pending attempt, an undispatched
event, a ready or running task), and never the activity log (`companies.ActivityEvent`).

Each kind is pruned in batches of `BATCH` rows, one short transaction each, so a large table is
never held in one long transaction. Safe from several hosts at once: a batch is chosen with
`SELECT ... FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite has one writer at a time and ignores it),
so two prunes never pick the same rows and their counts add up to what was there; the write then
repeats the kind's rule (`prunable(...)`), so a row changed since it was chosen is left alone.
We lock rather than issue plain conditional DELETEs because the run's trim must know, inside the
transaction that clears it, which stored file it is responsible for deleting, and because
reporting exact counts needs each row claimed by exactly one prune. A prune run twice finds
nothing the second time: deleted rows are gone and a trimmed run no longer matches.

`prune` writes no activity row: the activity log is per company and a prune is system-wide, as
`dispatch_events` logs nothing; the command prints what it did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.core.files.storage import default_storage
from django.db import models, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from agents.models import PRUNED_RUN_FIELDS, HeartbeatRun, WakeDelivery, WebhookDelivery
from companies.models import IdempotencyKey
from issues.models import Attachment, Event
from issues.storage import ATTACHMENTS_ROOT, delete_stored_on_commit

# Rows per transaction: small enough that a batch's locks are held for well under a second.
BATCH = 1000
# How long a stored attachment file may go without its row before it is garbage: far longer than
# any upload takes between storing the file and committing the row.
ORPHAN_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class PruneReport:
    """What one prune did (or, with `dry_run`, would do), per kind."""

    cutoff: datetime
    dry_run: bool
    runs: int  # finished runs trimmed
    run_log_files: int  # their stored log files deleted
    webhook_deliveries: int
    wake_deliveries: int
    events: int
    idempotency_keys: int
    task_results: int
    orphan_files: int  # attachment files no row names

    def counts(self) -> dict[str, int]:
        return {
            name: value for name, value in asdict(self).items() if name not in {"cutoff", "dry_run"}
        }


def finished_task_results(before: datetime):
    """The database task backend's results that finished (succeeded or failed) before `before`:
    a ready or running task is never among them. Its model is a library's, so the rule is here."""
    return DBTaskResult.objects.finished().filter(finished_at__lt=before)


def prune(
    *, older_than: timedelta, dry_run: bool = False, now: datetime | None = None
) -> PruneReport:
    """Trim finished runs and delete settled attempts, dispatched events, expired idempotency
    keys and finished task results older than `older_than` before `now`; with
    `dry_run`, count them and change nothing. Idempotent and safe beside other prunes (see the
    module docstring)."""
    now = now or timezone.now()
    cutoff = now - older_than
    kinds: dict[str, Callable[[], models.QuerySet]] = {
        "webhook_deliveries": lambda: WebhookDelivery.objects.prunable(cutoff),
        "wake_deliveries": lambda: WakeDelivery.objects.prunable(cutoff),
        "events": lambda: Event.objects.prunable(cutoff),
        "idempotency_keys": lambda: IdempotencyKey.objects.expired(now),
        "task_results": lambda: finished_task_results(cutoff),
    }
    orphans = orphan_files(now - ORPHAN_GRACE)
    if dry_run:
        runs = HeartbeatRun.objects.prunable(cutoff)
        counts = {name: rows().count() for name, rows in kinds.items()}
        return PruneReport(
            cutoff=cutoff,
            dry_run=True,
            runs=runs.count(),
            run_log_files=runs.exclude(log_file="").count(),
            orphan_files=len(orphans),
            **counts,
        )
    runs, files = _trim_runs(cutoff)
    counts = {name: _delete_in_batches(rows) for name, rows in kinds.items()}
    for name in orphans:
        default_storage.delete(name)  # another prune may have deleted it too: that is fine
    return PruneReport(
        cutoff=cutoff,
        dry_run=False,
        runs=runs,
        run_log_files=files,
        orphan_files=len(orphans),
        **counts,
    )


def orphan_files(before: datetime) -> list[str]:
    """The stored attachment files last written before `before` that no attachment row names."""
    stored = [name for name in _stored_under(ATTACHMENTS_ROOT)
              if default_storage.get_modified_time(name) < before]  # fmt: skip
    named: set[str] = set()
    for start in range(0, len(stored), BATCH):
        chunk = stored[start : start + BATCH]
        named |= set(Attachment.objects.filter(file__in=chunk).values_list("file", flat=True))
    return [name for name in stored if name not in named]


def _stored_under(path: str) -> list[str]:
    """Every file the default storage holds under `path` (recursively)."""
    if not default_storage.exists(path):
        return []
    directories, files = default_storage.listdir(path)
    names = [f"{path}/{name}" for name in files]
    for directory in directories:
        names += _stored_under(f"{path}/{directory}")
    return names


def _claim_batch(rows: models.QuerySet, after, *fields: str) -> list:
    """The next `BATCH` rows by primary key after `after`, locked for this transaction; rows
    another prune holds are skipped (it is pruning them). Walking the key keeps each batch's
    scan short and the whole prune one pass over the table."""
    if after is not None:
        rows = rows.filter(pk__gt=after)
    rows = rows.select_for_update(skip_locked=True, of=("self",)).order_by("pk")
    return list(rows.values_list("pk", *fields)[:BATCH])


def _delete_in_batches(rows: Callable[[], models.QuerySet]) -> int:
    deleted, after = 0, None
    while True:
        with transaction.atomic():
            ids = [pk for (pk,) in _claim_batch(rows(), after)]
            if not ids:
                return deleted
            after = ids[-1]
            queryset = rows().filter(pk__in=ids)
            _, per_model = queryset.delete()
            deleted += per_model.get(queryset.model._meta.label, 0)


def _trim_runs(cutoff: datetime) -> tuple[int, int]:
    """Trim prunable runs in batches; answers how many runs and how many stored log files."""
    trimmed, files, after = 0, 0, None
    while True:
        with transaction.atomic():
            batch = _claim_batch(HeartbeatRun.objects.prunable(cutoff), after, "log_file")
            if not batch:
                return trimmed, files
            after = batch[-1][0]
            ids = [pk for pk, _ in batch]
            trimmed += (
                HeartbeatRun.objects.prunable(cutoff).filter(pk__in=ids).update(**PRUNED_RUN_FIELDS)
            )
            names = [name for _, name in batch if name]
            files += len(names)
            # The file goes only once the row no longer names it: a rollback keeps both.
            delete_stored_on_commit(names)
