"""`manage.py dispatch_events [--json]`: fan out every domain event not yet dispatched.

Each write queues a dispatch when it commits; a process that dies between its commit and that
queueing leaves its events waiting until the next write's dispatch. This sweeps them now (safe
beside running dispatchers and workers: rows another dispatcher holds are skipped). Run it from
cron, or after restoring a worker. Prints how many events it dispatched.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from issues.events import dispatch_events


class Command(BaseCommand):
    help = "Dispatch every domain event not yet fanned out to webhook endpoints."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print {dispatched: N} as JSON")

    def handle(self, *args, **options):
        dispatched = dispatch_events.call()
        if options["verbosity"] == 0:
            return
        if options.get("json"):
            self.stdout.write(json.dumps({"dispatched": dispatched}))
        else:
            self.stdout.write(f"Dispatched {dispatched} event(s).")
