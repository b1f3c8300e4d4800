"""`manage.py dispatch_events [--json]`: what a crash can leave waiting, sent on.

Each write queues a dispatch when it commits; a process that dies between its commit and that
queueing leaves its events waiting until the next write's dispatch. A worker killed in the middle
of a delivery leaves that attempt pending with nothing to run it. This dispatches the events
now (safe beside running dispatchers: rows another one holds are skipped) and queues again
every delivery attempt overdue by five minutes (at-least-once; receivers dedupe on
`webhook-id`). Run it from cron, or after restoring a worker. Prints both counts.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from agents.delivery import requeue_overdue_deliveries
from issues.events import dispatch_events


class Command(BaseCommand):
    help = "Dispatch every domain event not yet fanned out to webhook endpoints."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print {dispatched: N} as JSON")

    def handle(self, *args, **options):
        dispatched = dispatch_events.call()
        requeued = requeue_overdue_deliveries()
        if options["verbosity"] == 0:
            return
        if options.get("json"):
            self.stdout.write(json.dumps({"dispatched": dispatched, "requeued": requeued}))
        else:
            self.stdout.write(
                f"Dispatched {dispatched} event(s); queued {requeued} overdue delivery attempt(s)."
            )
