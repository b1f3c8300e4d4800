"""`manage.py prune --older-than AGE`: retention (DESIGN §12). Finished runs lose their logs and
bulky fields but keep their rows; settled delivery attempts, dispatched events, expired
idempotency keys and finished task results go; nothing pending or live and never the activity
log is touched."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone
from django_tasks_db.compat import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from agents.models import HeartbeatRun, WakeDelivery, WebhookDelivery
from companies.models import ActivityEvent, IdempotencyKey
from companies.services import log_change
from issues import retention
from issues.models import Attachment, CostEvent, Event
from paperclip.actors import SYSTEM
from tests import factories

OLD = timedelta(days=100)  # past the 90 days every test prunes at
YOUNG = timedelta(days=10)

NOTHING = {
    "runs": 0,
    "runLogFiles": 0,
    "webhookDeliveries": 0,
    "wakeDeliveries": 0,
    "events": 0,
    "idempotencyKeys": 0,
    "taskResults": 0,
    "orphanFiles": 0,
}


def ago(age: timedelta):
    return timezone.now() - age


def prune(*args: str) -> dict:
    out = StringIO()
    call_command("prune", "--older-than", "90d", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def finished_run(agent, age: timedelta, **fields) -> HeartbeatRun:
    """A run that failed `age` ago, with everything retention trims (and a cost)."""
    fields = {
        "status": HeartbeatRun.Status.FAILED,
        "finished_at": ago(age),
        "log_tail": "last lines\n",
        "context": {"taskId": "iss_1", "wakeReason": "assignment"},
        "error": "The command exited with 1",
        "result": {"summary": "half done"},
        "checkpoint": {"step": 3},
        "exit_reason": "failed",
        "exit_code": 1,
        "usage": {"inputTokens": 10, "outputTokens": 2, "costCents": 5},
        **fields,
    }
    run = factories.HeartbeatRunFactory(agent=agent, **fields)
    HeartbeatRun.objects.filter(pk=run.pk).update(created_at=ago(age) - timedelta(minutes=5))
    return run


def with_log(run: HeartbeatRun, text: bytes = b"the whole output\n") -> HeartbeatRun:
    run.log_file.save(f"{run.pk}.log", ContentFile(text), save=True)
    return run


def wake_attempt(run: HeartbeatRun, age: timedelta) -> WakeDelivery:
    attempt = factories.WakeDeliveryFactory(run=run)
    WakeDelivery.objects.filter(pk=attempt.pk).update(created_at=ago(age))
    return attempt


@pytest.fixture
def world(agent, company, media):
    """One of each kind: old and settled (prunable), young, and old but still pending or live."""
    endpoint = factories.WebhookEndpointFactory(company=company)
    old_run = with_log(finished_run(agent, OLD))
    young_run = with_log(finished_run(agent, YOUNG))
    # Started long ago and still going (a live lease), or dead but not yet timed out: not finished.
    running = factories.live_run(agent, context={"taskId": "iss_2"}, log_tail="so far\n")
    dead = factories.live_run(agent, lease_expires_at=ago(OLD), log_tail="crashed\n")
    HeartbeatRun.objects.filter(pk__in=[running.pk, dead.pk]).update(created_at=ago(OLD))
    delivery = {
        "old_succeeded": factories.WebhookDeliveryFactory(
            endpoint=endpoint, status="succeeded", created_at=ago(OLD)
        ),
        "old_failed": factories.WebhookDeliveryFactory(
            endpoint=endpoint, status="failed", created_at=ago(OLD)
        ),
        "old_pending": factories.WebhookDeliveryFactory(
            endpoint=endpoint, status="pending", created_at=ago(OLD)
        ),
        "young": factories.WebhookDeliveryFactory(
            endpoint=endpoint, status="succeeded", created_at=ago(YOUNG)
        ),
    }
    wake = {
        "old": wake_attempt(old_run, OLD),
        "old_of_live_run": wake_attempt(running, OLD),
        "young": wake_attempt(young_run, YOUNG),
    }
    event = {
        "old": factories.EventFactory(company=company, dispatched_at=ago(OLD)),
        "old_undispatched": factories.EventFactory(company=company, created_at=ago(OLD)),
        "young": factories.EventFactory(company=company, dispatched_at=ago(YOUNG)),
    }
    key = {
        # Expired a minute ago: gone whatever --older-than says.
        "expired": factories.IdempotencyKeyFactory(
            created_at=ago(timedelta(hours=24, minutes=1)), expires_at=ago(timedelta(minutes=1))
        ),
        "valid": factories.IdempotencyKeyFactory(),
    }
    task = {
        "old_succeeded": factories.TaskResultFactory(finished_at=ago(OLD)),
        "old_failed": factories.TaskResultFactory(
            status=TaskResultStatus.FAILED, finished_at=ago(OLD)
        ),
        "ready": factories.TaskResultFactory(status=TaskResultStatus.READY, finished_at=None),
        "running": factories.TaskResultFactory(status=TaskResultStatus.RUNNING, finished_at=None),
        "young": factories.TaskResultFactory(finished_at=ago(YOUNG)),
    }
    log_change(SYSTEM, old_run, "run.finished", {"status": {"from": "running", "to": "failed"}})
    ActivityEvent.objects.update(created_at=ago(OLD))  # the activity log is old too
    return {
        "old_run": old_run,
        "young_run": young_run,
        "running": running,
        "dead": dead,
        "delivery": delivery,
        "wake": wake,
        "event": event,
        "key": key,
        "task": task,
    }


EXPECTED = {
    "runs": 1,
    "runLogFiles": 1,
    "webhookDeliveries": 2,
    "wakeDeliveries": 1,
    "events": 1,
    "idempotencyKeys": 1,
    "taskResults": 2,
    "orphanFiles": 0,  # an attachment file with no row: its own test, below
}


@pytest.mark.django_db
def test_prune_trims_old_finished_runs_and_deletes_what_is_settled(
    world, media, django_capture_on_commit_callbacks
):
    log_name = world["old_run"].log_file.name
    assert (media / log_name).exists()

    with django_capture_on_commit_callbacks(execute=True):
        report = prune()

    assert report["dryRun"] is False
    assert report["pruned"] == EXPECTED
    # The old run keeps its row, status, timing, exit and cost; its output and bulky fields go,
    # its log file from storage too.
    run = HeartbeatRun.objects.get(pk=world["old_run"].pk)
    assert (run.status, run.exit_reason, run.exit_code) == ("failed", "failed", 1)
    assert run.finished_at == world["old_run"].finished_at
    assert run.usage == world["old_run"].usage
    assert (run.log_file.name, run.log_tail, run.error) == ("", "", "")
    assert (run.context, run.result, run.checkpoint) == ({}, {}, None)
    assert not (media / log_name).exists()
    assert CostEvent.objects.filter(heartbeat_run=run).count() == 1
    assert WakeDelivery.objects.filter(pk=world["wake"]["old"].pk).count() == 0
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {
        world["delivery"]["old_pending"].pk,
        world["delivery"]["young"].pk,
    }
    assert set(Event.objects.values_list("pk", flat=True)) == {
        world["event"]["old_undispatched"].pk,
        world["event"]["young"].pk,
    }
    assert list(IdempotencyKey.objects.values_list("pk", flat=True)) == [world["key"]["valid"].pk]
    assert set(DBTaskResult.objects.values_list("pk", flat=True)) == {
        world["task"][name].pk for name in ("ready", "running", "young")
    }


@pytest.mark.django_db
def test_young_runs_and_live_or_dead_but_unfinished_runs_are_left_whole(
    world, media, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        prune()

    young = HeartbeatRun.objects.get(pk=world["young_run"].pk)
    assert young.log_tail == "last lines\n" and young.checkpoint == {"step": 3}
    assert (media / young.log_file.name).read_bytes() == b"the whole output\n"
    running = HeartbeatRun.objects.get(pk=world["running"].pk)
    assert (running.context, running.log_tail) == ({"taskId": "iss_2"}, "so far\n")
    assert HeartbeatRun.objects.get(pk=world["dead"].pk).log_tail == "crashed\n"
    assert set(WakeDelivery.objects.values_list("pk", flat=True)) == {
        world["wake"]["old_of_live_run"].pk,
        world["wake"]["young"].pk,
    }


@pytest.mark.django_db
def test_the_activity_log_is_never_pruned(world):
    before = list(ActivityEvent.objects.values_list("pk", "action", "details"))
    assert before

    prune()

    assert list(ActivityEvent.objects.values_list("pk", "action", "details")) == before


@pytest.mark.django_db
def test_dry_run_changes_nothing_and_counts_what_the_real_run_then_prunes(
    world, media, django_capture_on_commit_callbacks
):
    def snapshot():
        return {
            model: list(model.objects.order_by("pk").values())
            for model in (HeartbeatRun, WakeDelivery, WebhookDelivery, Event, IdempotencyKey)
        } | {DBTaskResult: sorted(str(pk) for pk in DBTaskResult.objects.values_list("pk"))}

    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        dry = prune("--dry-run")

    assert dry["dryRun"] is True
    assert dry["pruned"] == EXPECTED
    assert snapshot() == before
    assert (media / world["old_run"].log_file.name).exists()
    assert prune()["pruned"] == dry["pruned"]


@pytest.mark.django_db
def test_a_second_prune_prunes_nothing(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert prune()["pruned"] == EXPECTED
    with django_capture_on_commit_callbacks(execute=True):
        assert prune()["pruned"] == NOTHING


@pytest.mark.django_db
def test_json_is_one_object_with_the_cutoff_dry_run_and_counts_per_kind():
    moment = timezone.now()

    report = prune("--dry-run")

    assert set(report) == {"cutoff", "dryRun", "pruned"}
    assert report["dryRun"] is True
    assert report["pruned"] == NOTHING
    cutoff = timezone.datetime.fromisoformat(report["cutoff"])
    assert abs(cutoff - (moment - timedelta(days=90))) < timedelta(seconds=5)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("age", "delta"),
    [("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30))],
)
def test_older_than_takes_days_hours_or_minutes(age, delta):
    out = StringIO()
    moment = timezone.now()

    call_command("prune", "--older-than", age, "--json", stdout=out)

    cutoff = timezone.datetime.fromisoformat(json.loads(out.getvalue())["cutoff"])
    assert abs(cutoff - (moment - delta)) < timedelta(seconds=5)


@pytest.mark.django_db
@pytest.mark.parametrize("age", ["90", "d", "90x", "-1d", "0d", "1.5d", "90 days", "90D", ""])
def test_an_older_than_that_is_not_a_whole_number_of_days_hours_or_minutes_is_refused(age):
    with pytest.raises(CommandError, match="--older-than must be"):
        call_command("prune", f"--older-than={age}", stdout=StringIO())


@pytest.mark.django_db
def test_the_plain_report_names_each_count_and_says_a_dry_run_changed_nothing(world):
    out = StringIO()

    call_command("prune", "--older-than", "90d", "--dry-run", stdout=out)

    text = out.getvalue()
    assert text.startswith("Dry run, nothing changed. Cut-off ")
    assert "  1 finished run(s) would be trimmed\n" in text
    assert "  2 webhook delivery attempt(s) would be deleted\n" in text
    assert "  1 expired idempotency key(s) would be deleted\n" in text


@pytest.mark.django_db
def test_verbosity_zero_prints_nothing(world):
    out = StringIO()

    call_command("prune", "--older-than", "90d", "--verbosity", "0", stdout=out)

    assert out.getvalue() == ""
    assert not Event.objects.filter(pk=world["event"]["old"].pk).exists()


@pytest.mark.django_db
def test_batches_walk_the_whole_table(agent, company, monkeypatch):
    monkeypatch.setattr(retention, "BATCH", 3)
    for _ in range(7):
        finished_run(agent, OLD)
        factories.EventFactory(company=company, dispatched_at=ago(OLD))

    report = prune()

    assert (report["pruned"]["runs"], report["pruned"]["events"]) == (7, 7)
    assert not HeartbeatRun.objects.prunable(ago(timedelta(days=90))).exists()
    assert not Event.objects.exists()


# PostgreSQL: two prunes at once, as from two hosts.

RACERS = 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_prunes_at_once_prune_each_row_once_and_their_counts_add_up(
    agent, company, media, monkeypatch
):
    monkeypatch.setattr(retention, "BATCH", 5)  # many batches each, so they interleave
    endpoint = factories.WebhookEndpointFactory(company=company)
    rows = 40
    for _ in range(rows):
        with_log(finished_run(agent, OLD, usage={}))  # no cost: its recording needs a transaction
        factories.WebhookDeliveryFactory(endpoint=endpoint, status="succeeded", created_at=ago(OLD))
        factories.EventFactory(company=company, dispatched_at=ago(OLD))
        factories.IdempotencyKeyFactory(expires_at=ago(timedelta(minutes=1)))
        factories.TaskResultFactory(finished_at=ago(OLD))
    barrier = threading.Barrier(RACERS, timeout=30)
    reports: list[retention.PruneReport] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run_prune() -> None:
        try:
            barrier.wait()
            report = retention.prune(older_than=timedelta(days=90))
            with lock:
                reports.append(report)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            with lock:
                errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run_prune) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(reports) == RACERS
    totals = {
        name: sum(report.counts()[name] for report in reports) for name in reports[0].counts()
    }
    assert totals == {
        "runs": rows,
        "run_log_files": rows,
        "webhook_deliveries": rows,
        "wake_deliveries": 0,
        "events": rows,
        "idempotency_keys": rows,
        "task_results": rows,
        "orphan_files": 0,
    }
    assert not HeartbeatRun.objects.exclude(log_tail="").exists()
    assert not WebhookDelivery.objects.exists() and not Event.objects.exists()
    assert not IdempotencyKey.objects.exists() and not DBTaskResult.objects.exists()
    assert list((media / "run-logs").iterdir()) == []
    assert retention.prune(older_than=timedelta(days=90)).counts() == dict.fromkeys(totals, 0)


def test_an_attachment_file_no_row_names_is_deleted_once_past_the_grace(media, company):
    """An upload whose worker died after storing its file and before committing its row leaves
    the file behind (tests/test_faults.py): prune sweeps such files, never one a row names nor
    one young enough to be an upload still in flight."""
    issue = factories.IssueFactory(company=company)
    kept = Attachment.objects.create(
        company=company,
        issue=issue,
        file=default_storage.save(f"attachments/{company.pk}/{issue.pk}/att/kept.txt",
                                  ContentFile(b"kept")),
        original_name="kept.txt",
        content_type="text/plain",
        byte_size=4,
        sha256="0" * 64,
    )  # fmt: skip
    orphan = default_storage.save("attachments/cmp_x/iss_y/att_z/lost.txt", ContentFile(b"lost"))
    later = timezone.now() + retention.ORPHAN_GRACE + timedelta(minutes=1)

    young = retention.prune(older_than=timedelta(days=90))
    counted = retention.prune(older_than=timedelta(days=90), now=later, dry_run=True)
    swept = retention.prune(older_than=timedelta(days=90), now=later)

    assert (young.orphan_files, counted.orphan_files, swept.orphan_files) == (0, 1, 1)
    assert not default_storage.exists(orphan)
    assert default_storage.exists(kept.file.name)
    assert retention.prune(older_than=timedelta(days=90), now=later).orphan_files == 0
