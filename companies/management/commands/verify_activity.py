"""Verify the activity log's chains: recompute every sealed row's hash in seq order and report
each company's first break, a row edited after it was sealed (its hash no longer matches) or
sealed rows deleted (a gap in the seqs). Exits 1 on any break, 0 when every chain holds.

Rows not sealed yet are counted, not checked: nothing protects them until `seal_activity` runs.
A chain cannot show by itself rows deleted from its end, or a chain rewritten wholesale: compare
the heads printed here with ones logged elsewhere by `seal_activity`.

    python manage.py verify_activity [--company ID] [--json]
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from companies.models import Company
from companies.sealing import activity_verify


class Command(BaseCommand):
    help = __doc__.split("\n\n")[0]

    def add_arguments(self, parser):
        parser.add_argument("--company", help="Only this company's chain (cmp_...)")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Print the report as JSON"
        )

    def handle(self, *args, company, as_json, verbosity, **options):
        if company and not Company.objects.filter(pk=company).exists():
            raise CommandError(f"No company {company}")
        report = activity_verify(company_id=company)
        if as_json:
            self.stdout.write(json.dumps(report, sort_keys=True))
        elif verbosity > 0:
            self.write_text(report, verbosity)
        if not report["ok"]:
            sys.exit(1)

    def write_text(self, report: dict, verbosity: int) -> None:
        for broken in report["breaks"]:
            self.stdout.write(
                f"BROKEN {broken['companyId']} at #{broken['seq']} ({broken['problem']}): "
                f"{broken['message']}"
            )
        state = "intact" if report["ok"] else f"{len(report['breaks'])} broken"
        self.stdout.write(
            f"{len(report['companies'])} chain(s) {state}; {report['checked']} sealed row(s) "
            f"verified; {report['unsealed']} row(s) not sealed yet (not protected yet)"
        )
        if verbosity > 1:
            for cid, head in report["companies"].items():
                self.stdout.write(
                    f"  {cid}: head #{head['seq']} {head['hash']}, {head['unsealed']} unsealed"
                )
