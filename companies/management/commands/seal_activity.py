"""Seal the activity log: chain every committed, unsealed row into its company's sha256 chain.

Writes never chain their own row (that would line up a company's writes behind one lock); this
does it afterwards, one short transaction per batch of a company's rows, holding only that
company's row. Idempotent (a second run seals nothing new) and safe from several hosts at once.
Prints how many rows it sealed and each chain's new head (seq and hash): log it somewhere the
database admin cannot rewrite, since the heads are what show a chain rewritten or cut short.

    python manage.py seal_activity [--company ID] [--dry-run] [--json]
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from companies.models import Company
from companies.sealing import BATCH, activity_seal, unsealed


class Command(BaseCommand):
    help = __doc__.split("\n\n")[0]

    def add_arguments(self, parser):
        parser.add_argument("--company", help="Only this company's log (cmp_...)")
        parser.add_argument("--dry-run", action="store_true", help="Count, seal nothing")
        parser.add_argument("--batch", type=int, default=BATCH, help="Rows per transaction")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print the summary as JSON"
        )

    def handle(self, *args, company, dry_run, batch, as_json, verbosity, **options):
        if company and not Company.objects.filter(pk=company).exists():
            raise CommandError(f"No company {company}")
        if batch < 1:
            raise CommandError("--batch needs a positive number of rows")
        if dry_run:
            summary = {"dryRun": True, "sealed": unsealed(company).count(), "companies": {}}
        else:
            summary = {"dryRun": False, **activity_seal(company_id=company, batch=batch)}
        if as_json:
            self.stdout.write(json.dumps(summary, sort_keys=True))
            return
        if verbosity == 0:
            return
        if dry_run:
            self.stdout.write(f"would seal {summary['sealed']} activity row(s)")
            return
        self.stdout.write(
            f"sealed {summary['sealed']} activity row(s) in {len(summary['companies'])} "
            "company chain(s)"
        )
        for cid, head in summary["companies"].items():
            self.stdout.write(f"  {cid}: +{head['sealed']}, head #{head['seq']} {head['hash']}")
