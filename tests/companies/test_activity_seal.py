"""The tamper-evident activity log (issue 16): `seal_activity` chains each company's committed
rows by sha256 after the fact, and `verify_activity` recomputes the chains and reports the first
place one does not hold: a row edited after it was sealed, or sealed rows deleted."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse

from companies.models import ActivityEvent
from companies.sealing import activity_seal, activity_verify
from companies.services import activity_record
from paperclip.actors import SYSTEM
from tests import factories

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def record(company, n: int = 1, *, at: datetime | None = None, **details) -> list[ActivityEvent]:
    """`n` rows of the company's log, one second apart from `at` (or after its newest row)."""
    last = ActivityEvent.objects.filter(company=company).order_by("-created_at").first()
    start = at or (last.created_at + timedelta(seconds=1) if last else T0)
    rows = []
    for i in range(n):
        row = activity_record(
            actor=SYSTEM,
            company_id=company.pk,
            action="issue.updated",
            entity_type="issue",
            entity_id=f"iss_{i}",
            issue_id=f"iss_{i}",
            details={"n": i, **details},
        )
        ActivityEvent.objects.filter(pk=row.pk).update(created_at=start + timedelta(seconds=i))
        rows.append(ActivityEvent.objects.get(pk=row.pk))
    return rows


def expected_hash(previous: str, row: ActivityEvent) -> str:
    """The verification contract, written out again independently of companies.sealing."""
    fields = [
        row.seal_seq,
        row.id,
        row.company_id,
        row.actor_type,
        row.actor_id,
        row.run_id,
        row.action,
        row.entity_type,
        row.entity_id,
        row.issue_id,
        row.details,
        row.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
    ]
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{previous}\n{body}".encode()).hexdigest()


def chain(company) -> list[ActivityEvent]:
    return list(ActivityEvent.objects.filter(company=company).order_by("seal_seq"))


def verify(*args: str) -> tuple[int, dict]:
    """Run `verify_activity --json`; answers (exit code, report)."""
    out = StringIO()
    try:
        call_command("verify_activity", "--json", *args, stdout=out)
        code = 0
    except SystemExit as exit:
        code = exit.code
    return code, json.loads(out.getvalue())


def test_sealing_numbers_rows_from_one_in_creation_order_each_hash_chained_to_the_last(company):
    rows = record(company, 3, note="héllo")

    result = activity_seal()

    sealed = chain(company)
    assert [row.pk for row in sealed] == [row.pk for row in rows]
    assert [row.seal_seq for row in sealed] == [1, 2, 3]
    previous = "0" * 64  # the genesis value
    for row in sealed:
        assert row.seal_hash == expected_hash(previous, row)
        previous = row.seal_hash
    assert result == {
        "sealed": 3,
        "companies": {company.pk: {"sealed": 3, "seq": 3, "hash": sealed[-1].seal_hash}},
    }


def test_a_second_seal_run_seals_nothing_new(company):
    record(company, 2)
    activity_seal()
    before = [(row.seal_seq, row.seal_hash) for row in chain(company)]

    assert activity_seal() == {"sealed": 0, "companies": {}}
    assert [(row.seal_seq, row.seal_hash) for row in chain(company)] == before


def test_rows_written_after_a_seal_extend_the_chain(company):
    record(company, 2)
    activity_seal()
    record(company, 2)

    activity_seal()

    sealed = chain(company)
    assert [row.seal_seq for row in sealed] == [1, 2, 3, 4]
    assert sealed[2].seal_hash == expected_hash(sealed[1].seal_hash, sealed[2])
    assert sealed[3].seal_hash == expected_hash(sealed[2].seal_hash, sealed[3])


def test_a_row_committed_late_joins_the_chain_at_its_end_not_at_its_creation_time(company):
    record(company, 2)
    activity_seal()
    (late,) = record(company, at=T0 - timedelta(hours=1))  # created before every sealed row

    activity_seal()

    late.refresh_from_db()
    assert late.seal_seq == 3
    assert verify()[0] == 0


def test_sealing_works_in_batches_and_gives_one_unbroken_chain(company):
    record(company, 7)

    assert activity_seal(batch=3)["sealed"] == 7

    assert [row.seal_seq for row in chain(company)] == list(range(1, 8))
    assert verify()[0] == 0


def test_verify_passes_on_an_intact_chain_and_prints_each_head(company):
    record(company, 3)
    activity_seal()
    head = chain(company)[-1]

    code, report = verify()

    assert code == 0
    assert report == {
        "ok": True,
        "checked": 3,
        "unsealed": 0,
        "companies": {company.pk: {"seq": 3, "hash": head.seal_hash, "unsealed": 0}},
        "breaks": [],
    }


def test_a_sealed_row_edited_by_a_database_admin_is_reported_at_its_seq(company):
    record(company, 3)
    activity_seal()
    edited = chain(company)[1]
    ActivityEvent.objects.filter(pk=edited.pk).update(details={"n": 1, "approved": True})

    code, report = verify()

    assert code == 1
    assert report["ok"] is False
    assert report["checked"] == 1  # the rows before the break still hold
    assert [(b["companyId"], b["seq"], b["rowId"], b["problem"]) for b in report["breaks"]] == [
        (company.pk, 2, edited.pk, "hash_mismatch")
    ]


def test_a_row_edited_together_with_its_own_hash_breaks_the_next_row(company):
    record(company, 3)
    activity_seal()
    edited = chain(company)[1]
    edited.details = {"n": 1, "approved": True}
    previous = chain(company)[0].seal_hash
    ActivityEvent.objects.filter(pk=edited.pk).update(
        details=edited.details, seal_hash=expected_hash(previous, edited)
    )

    code, report = verify()

    assert code == 1
    assert [(b["seq"], b["problem"]) for b in report["breaks"]] == [(3, "hash_mismatch")]


def test_a_deleted_sealed_row_is_reported_as_a_gap(company):
    record(company, 4)
    activity_seal()
    ActivityEvent.objects.filter(company=company, seal_seq=2).delete()

    code, report = verify()

    assert code == 1
    (gap,) = report["breaks"]
    assert (gap["seq"], gap["rowId"], gap["problem"]) == (2, None, "seq_gap")
    assert "#2 are missing" in gap["message"]


def test_the_text_report_names_the_break_and_exits_1(company):
    record(company, 2)
    activity_seal()
    ActivityEvent.objects.filter(company=company, seal_seq=1).update(action="issue.created")
    out = StringIO()

    with pytest.raises(SystemExit) as exit:
        call_command("verify_activity", stdout=out)

    assert exit.value.code == 1
    assert f"BROKEN {company.pk} at #1 (hash_mismatch)" in out.getvalue()
    assert "1 chain(s) 1 broken" in out.getvalue()


def test_unsealed_rows_are_counted_not_reported_as_breaks(company):
    record(company, 2)
    activity_seal()
    record(company, 3)

    code, report = verify()

    assert code == 0
    assert (report["checked"], report["unsealed"], report["breaks"]) == (2, 3, [])
    assert report["companies"][company.pk]["unsealed"] == 3
    out = StringIO()
    call_command("verify_activity", stdout=out)
    assert "3 row(s) not sealed yet (not protected yet)" in out.getvalue()


def test_two_companies_have_independent_chains(company, other_company):
    record(company, 2)
    record(other_company, 3)

    activity_seal()

    assert [row.seal_seq for row in chain(company)] == [1, 2]
    assert [row.seal_seq for row in chain(other_company)] == [1, 2, 3]
    assert chain(other_company)[0].seal_hash == expected_hash("0" * 64, chain(other_company)[0])
    ActivityEvent.objects.filter(company=other_company, seal_seq=1).update(details={})
    code, report = verify()
    assert code == 1
    assert [b["companyId"] for b in report["breaks"]] == [other_company.pk]
    assert verify("--company", company.pk)[0] == 0


def test_seal_activity_prints_the_new_heads_and_can_be_limited_to_one_company(
    company, other_company
):
    record(company, 2)
    record(other_company, 1)
    out = StringIO()

    call_command("seal_activity", "--json", "--company", company.pk, stdout=out)

    head = chain(company)[-1]
    assert json.loads(out.getvalue()) == {
        "dryRun": False,
        "sealed": 2,
        "companies": {company.pk: {"sealed": 2, "seq": 2, "hash": head.seal_hash}},
    }
    assert not ActivityEvent.objects.filter(company=other_company, seal_seq__isnull=False).exists()
    out = StringIO()
    call_command("seal_activity", stdout=out)
    assert out.getvalue().splitlines() == [
        "sealed 1 activity row(s) in 1 company chain(s)",
        f"  {other_company.pk}: +1, head #1 {chain(other_company)[0].seal_hash}",
    ]


def test_seal_activity_dry_run_counts_and_seals_nothing(company):
    record(company, 2)
    out = StringIO()

    call_command("seal_activity", "--dry-run", stdout=out)

    assert out.getvalue().strip() == "would seal 2 activity row(s)"
    assert not ActivityEvent.objects.filter(seal_seq__isnull=False).exists()


def test_an_unknown_company_is_refused(company):
    with pytest.raises(CommandError, match="No company cmp_nope"):
        call_command("seal_activity", "--company", "cmp_nope", stdout=StringIO())
    with pytest.raises(CommandError, match="No company cmp_nope"):
        call_command("verify_activity", "--company", "cmp_nope", stdout=StringIO())


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_sealers_beside_a_writer_make_one_chain_with_no_duplicate_or_skipped_seq():
    company = factories.CompanyFactory()
    record(company, 300)
    barrier = threading.Barrier(4, timeout=30)
    errors: list[BaseException] = []

    def run(job) -> None:
        try:
            barrier.wait()
            job()
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    def seal() -> None:
        for _ in range(3):
            activity_seal(company_id=company.pk, batch=40)

    def write() -> None:
        for _ in range(30):
            activity_record(
                actor=SYSTEM,
                company_id=company.pk,
                action="issue.updated",
                entity_type="issue",
                entity_id="iss_w",
            )

    threads = [threading.Thread(target=run, args=(job,)) for job in (seal, seal, seal, write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert not any(thread.is_alive() for thread in threads)

    activity_seal(company_id=company.pk)

    assert [row.seal_seq for row in chain(company)] == list(range(1, 331))
    assert activity_verify()["ok"] is True


def test_the_admin_activity_list_says_which_rows_are_sealed(client, admin_user, company):
    record(company, 2)
    activity_seal()
    record(company)
    client.force_login(admin_user)

    response = client.get(reverse("admin:companies_activityevent_changelist"))

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("sealed #") == 2
    assert "sealed #1" in html and "sealed #2" in html
    assert html.count("not sealed yet") == 1
