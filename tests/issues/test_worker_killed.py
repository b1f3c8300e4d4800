"""An event is never lost when the worker is killed (DESIGN §9: at-least-once).

A real `manage.py db_worker` process, on the test database, is killed with SIGKILL at each moment
that matters, made deterministic by a receiver that holds the POST open or by a row or table lock
a second session of the test holds:

- mid-delivery (the receiver has the request): the attempt stays pending, the sweep
  (`manage.py dispatch_events`) queues it again once overdue, and the receiver gets the same
  event again with the same `webhook-id`;
- mid-dispatch (its transaction holds the event): nothing of it commits, and the next dispatch
  (the sweep's, or the next write's) fans the event out;
- between the dispatch's commit and the queueing of its delivery: the pending attempt has no task
  to run it, and the sweep queues it once overdue.

Recovery is what production runs: `manage.py dispatch_events`, then a fresh worker process.
The clock is moved past the overdue window by ageing the delivery row (no clock library in the
lock). A killed worker's session gives up the statement it was waiting in
(`client_connection_check_interval`), so "killed while waiting" is "killed before sending it".
PostgreSQL only: the worker is another process and must see the test's committed rows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.db.models import F
from django_tasks_db.models import DBTaskResult
from standardwebhooks.webhooks import Webhook

from agents.delivery import OVERDUE_AFTER, new_webhook_secret
from agents.models import WebhookDelivery, WebhookEndpoint
from issues.models import Event
from tests.agents.receivers import Receiver, hanging_receiver, running_receiver

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: the killed worker is another process, and pytest-django's "
        "SQLite test database is in memory, private to this one",
    ),
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("database_tasks"),
]

# Generous: a cold Django start and a delivery on a busy 2-core CI machine fit many times over.
WAIT_SECONDS = 60
POLL_SECONDS = 0.05
TASKS_TABLE = DBTaskResult._meta.db_table

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str) -> T:
    """Poll `condition` until it answers something truthy, and answer that."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not (answer := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT_SECONDS}s for {what}")
        time.sleep(POLL_SECONDS)
    return answer


def worker_database_url() -> str:
    """The test database (not the one DATABASE_URL names) as a URL for another process."""
    params = connection.settings_dict
    netloc = f"{quote(params['USER'], safe='')}:{quote(params['PASSWORD'], safe='')}"
    netloc += f"@{params['HOST']}" + (f":{params['PORT']}" if params["PORT"] else "")
    return f"postgres://{netloc}/{quote(params['NAME'], safe='')}"


@dataclass
class Workers:
    """Real `manage.py db_worker` processes on the test database. Their sessions are named
    (`application_name`) so the test can see what they wait on and wait for them to end."""

    log_dir: Path
    name: str = field(default_factory=lambda: f"killed-worker-{uuid.uuid4().hex[:12]}")
    processes: list[subprocess.Popen] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return os.environ | {
            "DATABASE_URL": worker_database_url(),
            "PGAPPNAME": self.name,  # libpq's application_name
            # A killed worker's session gives up a statement it waits in at once, as if the
            # worker had died before sending it, instead of finishing it once the lock is free.
            "PGOPTIONS": "-c client_connection_check_interval=100",
            "SECRET_KEY": django_settings.SECRET_KEY,
            "DEBUG": "0",
            "PAPERCLIP_TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
            "PAPERCLIP_WEBHOOK_ALLOW_PRIVATE": "1",  # the receivers are on 127.0.0.1
            # Never give up on a held request before the test kills the worker.
            "PAPERCLIP_WEBHOOK_TIMEOUT_SECONDS": str(WAIT_SECONDS * 2),
            "no_proxy": "127.0.0.1,localhost",
            "NO_PROXY": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }

    def command(self, worker_id: str, *args: str) -> list[str]:
        manage = str(Path(django_settings.BASE_DIR) / "manage.py")
        options = ["--no-reload", "--no-startup-delay", "--interval", str(POLL_SECONDS)]
        return [sys.executable, manage, "db_worker", *options, "--worker-id", worker_id, *args]

    def start(self, worker_id: str) -> subprocess.Popen:
        """A worker running until killed, its output in a log file."""
        log = (self.log_dir / f"{worker_id}.log").open("wb")
        process = subprocess.Popen(
            self.command(worker_id), env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.processes.append(process)
        return process

    def log(self, worker_id: str) -> str:
        return (self.log_dir / f"{worker_id}.log").read_text(errors="replace")

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL: no handler runs, no transaction is committed, no row is settled."""
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=WAIT_SECONDS) == -signal.SIGKILL

    def run_batch(self, worker_id: str) -> None:
        """A fresh worker runs everything that is due, then stops."""
        done = subprocess.run(
            self.command(worker_id, "--batch"),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        crashed = DBTaskResult.objects.failed()
        assert not crashed.exists(), [row.traceback for row in crashed]

    def sessions(self) -> list[int]:
        """The database sessions of these workers still open (a killed worker's session lives
        on until PostgreSQL notices its client is gone)."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [self.name]
            )
            return [pid for (pid,) in cursor.fetchall()]

    def blocked_by(self, holder: psycopg.Connection) -> tuple[int, str] | None:
        """The worker session waiting on a lock `holder` holds, and its statement, if any."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, query FROM pg_stat_activity"
                " WHERE application_name = %s AND %s = ANY(pg_blocking_pids(pid))",
                [self.name, holder.info.backend_pid],
            )
            return cursor.fetchone()

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=WAIT_SECONDS)
        # A session left behind holding locks would block the flush after the test.
        deadline = time.monotonic() + WAIT_SECONDS
        while self.sessions() and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                [self.name],
            )


@pytest.fixture
def workers(tmp_path) -> Iterator[Workers]:
    pool = Workers(log_dir=tmp_path)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def database_tasks(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@contextmanager
def session() -> Iterator[psycopg.Connection]:
    """A second session on the test database, to hold locks the worker must wait on; what it
    holds is released when the block ends, whatever happens."""
    with psycopg.connect(worker_database_url(), application_name="killed-worker-locks") as other:
        try:
            yield other
        finally:
            other.rollback()


def endpoint(company, url: str) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        company=company, url=url, events=["*"], secret=new_webhook_secret()
    )


def create_issue(board, company) -> Event:
    response = board.post(f"/v1/companies/{company.pk}/issues", {"title": "Durable"}, format="json")
    assert response.status_code == 201, response.json()
    [event] = Event.objects.undispatched()
    return event


def received(receiver: Receiver, hook: WebhookEndpoint) -> list[tuple[str, dict[str, Any]]]:
    """`(webhook-id, event)` of every request, each verified with the endpoint's secret."""
    return [
        (request.headers["webhook-id"], Webhook(hook.secret).verify(request.body, request.headers))
        for request in receiver.requests
    ]


def sweep() -> dict[str, int]:
    """`manage.py dispatch_events --json`, what cron runs after a crash."""
    out = StringIO()
    call_command("dispatch_events", "--json", stdout=out)
    return json.loads(out.getvalue())


def age_past_overdue(delivery: WebhookDelivery) -> None:
    """Five minutes and a second pass for this pending attempt (queued for "now")."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        created_at=F("created_at") - OVERDUE_AFTER - timedelta(seconds=1)
    )


def delivery_log(board, hook: WebhookEndpoint) -> list[tuple]:
    """The endpoint's delivery log as the board reads it, newest first."""
    response = board.get(f"/v1/companies/{hook.company_id}/webhooks/{hook.pk}/deliveries")
    assert response.status_code == 200, response.json()
    return [
        (row["eventId"], row["attempt"], row["status"], row["responseStatus"])
        for row in response.json()["data"]
    ]


def delivery_tasks(delivery: WebhookDelivery) -> list[tuple[str, list[str]]]:
    """`(status, worker ids)` of each `deliver_webhook` task run for this attempt, oldest first."""
    tasks = DBTaskResult.objects.filter(
        task_path__endswith=".deliver_webhook", args_kwargs__args=[delivery.pk]
    ).order_by("enqueued_at")
    return [(task.status, task.worker_ids) for task in tasks]


def holds_row_locks_on(pid: int, table: str) -> bool:
    """Whether session `pid` has rows of `table` locked (`FOR UPDATE` takes ROW SHARE on it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_locks WHERE pid = %s AND relation = %s::regclass"
            " AND mode = 'RowShareLock' AND granted",
            [pid, table],
        )
        return cursor.fetchone() is not None


def test_a_worker_killed_mid_delivery_loses_nothing_the_sweep_sends_it_again_same_webhook_id(
    board, company, workers
):
    with hanging_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        event = create_issue(board, company)

        worker = workers.start("doomed")
        wait_for(
            lambda: receiver.in_flight.is_set() or worker.poll() is not None,
            "the worker to POST the event",
        )
        assert worker.poll() is None, workers.log("doomed")
        workers.kill(worker)  # the receiver holds the request: the attempt is in flight
        receiver.release()
        wait_for(lambda: not workers.sessions(), "the killed worker's session to end")

        delivery = WebhookDelivery.objects.get()
        assert (delivery.event_id, delivery.attempt, delivery.status) == (event.pk, 1, "pending")
        # The task the dead worker claimed stays claimed: a new worker alone sends nothing.
        workers.run_batch("idle")
        assert delivery_tasks(delivery) == [("RUNNING", ["doomed"])]
        # Within five minutes the attempt could be a live one: the sweep leaves it alone.
        assert sweep() == {"dispatched": 0, "requeued": 0}

        age_past_overdue(delivery)
        assert sweep() == {"dispatched": 0, "requeued": 1}
        workers.run_batch("recovery")
        assert sweep() == {"dispatched": 0, "requeued": 0}  # settled: never queued again

    [(first_id, first), (second_id, second)] = received(receiver, hook)
    assert first_id == second_id == event.pk
    assert first == second
    assert (second["id"], second["type"]) == (event.pk, "issue.created")
    assert receiver.requests[0].body == receiver.requests[1].body
    assert delivery_log(board, hook) == [(event.pk, 1, "succeeded", 200)]
    assert delivery_tasks(delivery) == [
        ("RUNNING", ["doomed"]),  # killed mid-POST: nothing ever settles it
        ("SUCCESSFUL", ["recovery"]),
    ]


def test_a_worker_killed_holding_the_dispatch_commits_nothing_and_the_next_dispatch_sends_it(
    board, company, workers
):
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        event = create_issue(board, company)

        with session() as locks:
            # Its transaction holds the event row and writes a delivery: a lock that no INSERT
            # into the delivery log gets past stops it there, before anything commits.
            locks.execute(f"LOCK TABLE {WebhookDelivery._meta.db_table} IN SHARE MODE")
            worker = workers.start("doomed")
            pid, query = wait_for(
                lambda: workers.blocked_by(locks), "the dispatch to wait on the delivery log"
            )
            assert query.startswith(f'INSERT INTO "{WebhookDelivery._meta.db_table}"'), query
            assert holds_row_locks_on(pid, Event._meta.db_table)
            workers.kill(worker)
            # Its session aborts while still waiting (it checks for its client) and rolls back.
            wait_for(lambda: not workers.sessions(), "the killed worker's session to end")

        assert list(Event.objects.undispatched()) == [event]
        assert not WebhookDelivery.objects.exists()
        assert sweep() == {"dispatched": 1, "requeued": 0}
        workers.run_batch("recovery")

    assert received(receiver, hook) == [(event.pk, event.payload)]
    assert not Event.objects.undispatched().exists()
    assert delivery_log(board, hook) == [(event.pk, 1, "succeeded", 200)]


def test_a_worker_killed_between_the_dispatch_commit_and_queueing_the_delivery_loses_nothing(
    board, company, workers
):
    with running_receiver() as receiver:
        hook = endpoint(company, receiver.url)
        event = create_issue(board, company)

        with session() as endpoint_lock, session() as queue_lock:
            # Django's foreign keys are deferred: the delivery's, and the FOR KEY SHARE on the
            # endpoint it takes, are checked at COMMIT, which this row lock holds back.
            endpoint_lock.execute(
                f"SELECT 1 FROM {WebhookEndpoint._meta.db_table} WHERE id = %s FOR UPDATE",
                [hook.pk],
            )
            worker = workers.start("doomed")
            _, query = wait_for(
                lambda: workers.blocked_by(endpoint_lock), "the dispatch to wait on the endpoint"
            )
            assert query == "COMMIT", query
            # Its task is claimed; from now on no task can be queued until the test lets go.
            queue_lock.execute(f"LOCK TABLE {TASKS_TABLE} IN SHARE MODE")
            endpoint_lock.rollback()
            _, query = wait_for(
                lambda: workers.blocked_by(queue_lock), "the committed dispatch to queue"
            )
            assert query.startswith(f'INSERT INTO "{TASKS_TABLE}"'), query
            workers.kill(worker)
            # Its session gives up the INSERT (it checks for its client): nothing is queued.
            wait_for(lambda: not workers.sessions(), "the killed worker's session to end")

        # The dispatch committed: the event is out of the outbox, its attempt pending, unqueued.
        assert not Event.objects.undispatched().exists()
        delivery = WebhookDelivery.objects.get()
        assert (delivery.event_id, delivery.status) == (event.pk, "pending")
        assert delivery_tasks(delivery) == []
        assert sweep() == {"dispatched": 0, "requeued": 0}  # not overdue yet

        age_past_overdue(delivery)
        assert sweep() == {"dispatched": 0, "requeued": 1}
        workers.run_batch("recovery")

    assert received(receiver, hook) == [(event.pk, event.payload)]
    assert delivery_log(board, hook) == [(event.pk, 1, "succeeded", 200)]
    assert delivery_tasks(delivery) == [("SUCCESSFUL", ["recovery"])]
