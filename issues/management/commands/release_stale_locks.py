"""Heal what crashed runs left behind: time out runs whose lease expired, then release every
checkout lock held by a run that is not live (in_progress → todo, assignee kept).

Safe to run from several hosts at once (rows are claimed with SELECT ... FOR UPDATE SKIP
LOCKED, so each lock is released exactly once) and idempotent (a second run finds nothing).

    python manage.py release_stale_locks [--dry-run] [--company ID] [--json] [--loop SECONDS]
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents.models import HeartbeatRun
from agents.services import time_out_expired_runs
from issues.models import Issue
from issues.services import release_stale_lock
from paperclip.actors import SYSTEM

BATCH = 500


def time_out_dead_runs(*, company_id: str | None, dry_run: bool) -> list[str]:
    """Mark runs whose lease ran out `timed_out`; answers their ids."""
    timed_out: list[str] = []
    while True:
        with transaction.atomic():
            runs = HeartbeatRun.objects.expired()
            if company_id:
                runs = runs.for_company(company_id)
            ids = list(
                runs.select_for_update(skip_locked=True)
                .exclude(pk__in=timed_out)
                .values_list("pk", flat=True)[:BATCH]
            )
            if not ids:
                return timed_out
            if not dry_run:
                time_out_expired_runs(ids)
            timed_out.extend(ids)
        if dry_run and len(ids) < BATCH:
            return timed_out


def release_stale_locks(*, company_id: str | None, dry_run: bool) -> list[dict]:
    """Release every lock held by a run that is not live; answers one entry per issue."""
    released: list[dict] = []
    seen: set[str] = set()
    while True:
        with transaction.atomic():
            issues = Issue.objects.stale_locks().exclude(pk__in=seen)
            if company_id:
                issues = issues.for_company(company_id)
            batch = list(
                issues.select_for_update(skip_locked=True, of=("self",))
                .select_related("checkout_run")
                .order_by("pk")[:BATCH]
            )
            if not batch:
                return released
            for issue in batch:
                seen.add(issue.pk)
                if dry_run:
                    released.append(
                        {
                            "issueId": issue.pk,
                            "identifier": issue.identifier,
                            "runId": issue.checkout_run_id,
                        }
                    )
                else:
                    released.append(release_stale_lock(actor=SYSTEM, issue=issue))


class Command(BaseCommand):
    help = __doc__.split("\n\n")[0]

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Report, change nothing")
        parser.add_argument("--company", help="Only this company's runs and issues (cmp_...)")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print the summary as JSON"
        )
        parser.add_argument(
            "--loop",
            type=float,
            metavar="SECONDS",
            help="Keep running, one pass every SECONDS (a daemon instead of cron)",
        )

    def handle(self, *args, dry_run, company, as_json, loop, verbosity, **options):
        if loop is not None and loop <= 0:
            raise CommandError("--loop needs a positive number of seconds")
        while True:
            self.one_pass(dry_run=dry_run, company_id=company, as_json=as_json, verbosity=verbosity)
            if loop is None:
                return
            time.sleep(loop)

    def one_pass(self, *, dry_run: bool, company_id: str | None, as_json: bool, verbosity: int):
        timed_out = time_out_dead_runs(company_id=company_id, dry_run=dry_run)
        released = release_stale_locks(company_id=company_id, dry_run=dry_run)
        summary = {
            "dryRun": dry_run,
            "timedOutRuns": len(timed_out),
            "releasedLocks": len(released),
            "runs": timed_out,
            "issues": released,
        }
        if as_json:
            self.stdout.write(json.dumps(summary, sort_keys=True))
            return
        if verbosity == 0:
            return
        verb = "would release" if dry_run else "released"
        self.stdout.write(
            f"{'would time out' if dry_run else 'timed out'} {len(timed_out)} expired run(s); "
            f"{verb} {len(released)} stale lock(s)"
        )
        if verbosity > 1:
            for entry in released:
                self.stdout.write(f"  {entry['identifier']} (run {entry['runId']})")
