"""Retention (DESIGN §12): trim finished runs' logs and bulky fields, and delete settled webhook
and wake delivery attempts, dispatched outbox events and finished task results older than
`--older-than`, every expired idempotency key, and attachment files no attachment names (an
upload killed between storing its file and committing its row). Never the activity log, never
anything pending or live (`issues.retention` says what each kind keeps).

Idempotent (a second run prunes nothing) and safe to run from several hosts at once (each
batch's rows are claimed with SELECT ... FOR UPDATE SKIP LOCKED). Writes no activity row (a
prune is system-wide, the activity log per company); it prints what it did.

    python manage.py prune --older-than 90d [--dry-run] [--json]
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from issues.retention import prune

UNITS = {"d": "days", "h": "hours", "m": "minutes"}
AGE = re.compile(r"(?P<amount>[0-9]+)(?P<unit>[dhm])")

# What each count is, and what happened to it.
LABELS = {
    "runs": ("finished run(s)", "trimmed"),
    "run_log_files": ("run log file(s)", "deleted"),
    "webhook_deliveries": ("webhook delivery attempt(s)", "deleted"),
    "wake_deliveries": ("wake delivery attempt(s)", "deleted"),
    "events": ("dispatched event(s)", "deleted"),
    "idempotency_keys": ("expired idempotency key(s)", "deleted"),
    "task_results": ("finished task result(s)", "deleted"),
    "orphan_files": ("attachment file(s) no attachment names", "deleted"),
}
# The JSON names, as the APIs write them.
JSON_NAMES = {
    "runs": "runs",
    "run_log_files": "runLogFiles",
    "webhook_deliveries": "webhookDeliveries",
    "wake_deliveries": "wakeDeliveries",
    "events": "events",
    "idempotency_keys": "idempotencyKeys",
    "task_results": "taskResults",
    "orphan_files": "orphanFiles",
}


def parse_age(value: str) -> timedelta:
    """`90d`, `12h`, `30m` as a timedelta; CommandError for anything else (or zero)."""
    match = AGE.fullmatch(value.strip())
    if match is None or int(match["amount"]) == 0:
        raise CommandError(
            f"--older-than must be a positive whole number of days, hours or minutes "
            f"(90d, 12h, 30m), not {value!r}"
        )
    return timedelta(**{UNITS[match["unit"]]: int(match["amount"])})


class Command(BaseCommand):
    help = __doc__.split("\n\n")[0]

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="Prune what finished, was delivered or dispatched longer ago than this: "
            "90d, 12h, 30m",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count, change nothing")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print the counts as JSON"
        )

    def handle(self, *args, older_than, dry_run, as_json, verbosity, **options):
        report = prune(older_than=parse_age(older_than), dry_run=dry_run)
        counts = report.counts()
        if as_json:
            summary = {
                "cutoff": report.cutoff.isoformat(),
                "dryRun": report.dry_run,
                "pruned": {JSON_NAMES[name]: count for name, count in counts.items()},
            }
            self.stdout.write(json.dumps(summary, sort_keys=True))
            return
        if verbosity == 0:
            return
        self.stdout.write(
            f"{'Dry run, nothing changed. ' if dry_run else ''}"
            f"Cut-off {report.cutoff.isoformat()} (older than {older_than}):"
        )
        for name, count in counts.items():
            noun, verb = LABELS[name]
            self.stdout.write(f"  {count} {noun} {'would be ' if dry_run else ''}{verb}")
