"""Faults, bounded, on 127.0.0.1 (DESIGN §7, §12): what a crash or an outage leaves behind.

- an app worker killed with SIGKILL under concurrent writes: no half of a write survives (each
  issue, comment and attachment has its activity row, each attachment its stored file), and no
  acknowledged write is lost;
- an upload whose worker is killed after its file was stored but before its row committed
  leaves a file no row names, and the next `prune` deletes it: no orphan file survives;
- PostgreSQL stopped and started under load: every answer meanwhile is a success or the `/api`
  503 with `Retry-After`, never a 500 or a page, and the same server answers again once the
  database is back, without a restart;
- the lock cleanup racing checkouts: round after round a dead run's lease expires and two
  `release_stale_locks` and the agent's two new runs go for its issue at once: no lock is
  released twice, none is left stuck.

The worker killed mid-delivery is tests/issues/test_worker_killed.py. PostgreSQL only: the app
servers are other processes and must see the test's committed rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from io import StringIO
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.models import ActivityEvent
from issues import retention
from issues.models import Attachment, Comment, Issue
from tests import factories
from tests.conftest import client_for
from tests.factories import live_run
from tests.issues.test_protocol_races import race
from tests.issues.test_worker_killed import worker_database_url
from tests.servers import SERVER_TESTS, Answer, AppServer, running, server_env
from tests.wire import stored, wire

pytestmark = SERVER_TESTS

WAIT_SECONDS = 30  # any bounded wait below; a busy 2-core CI machine fits it many times over
POLL_SECONDS = 0.05


def wait_until(condition: Callable[[], object], what: str, seconds: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds}s for {what}")
        time.sleep(POLL_SECONDS)


def board_token(company) -> str:
    user = factories.MembershipFactory(company=company).user
    return factories.BoardTokenFactory(user=user).token


@contextlib.contextmanager
def app_server(tmp_path: Path, *, workers: int = 1, **env: str) -> Iterator[AppServer]:
    """One granian server on the test database for one test; its log tail is printed after
    the test (pytest shows it when the test failed)."""
    app_name = f"faults-{uuid.uuid4().hex[:12]}"
    server = AppServer(
        "app",
        tmp_path / "server.log",
        server_env(
            app_name,
            # A killed worker's session gives up a statement it waits in at once instead of
            # finishing it once the lock is free (it can never commit: its client is gone).
            PGOPTIONS="-c client_connection_check_interval=100",
            **env,
        ),
        workers=workers,
    )
    try:
        with running([server], app_name):
            yield server
    finally:
        print(f"--- server (port {server.port}), last log lines:\n{server.tail(60)}")


def multipart(name: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def upload(server: AppServer, token: str, company, issue_id: str, data: bytes) -> Answer:
    body, content_type = multipart("notes.txt", data, "text/plain")
    return server.call(
        "POST",
        f"/api/companies/{wire(company)}/issues/{issue_id}/attachments",
        token,
        body,
        headers={"Content-Type": content_type},
    )


def stored_files(media: Path) -> set[str]:
    """Every file in the storage, by its storage name."""
    return {str(path.relative_to(media)) for path in media.rglob("*") if path.is_file()}


# -- an app worker killed under concurrent writes --------------------------------------------

WRITERS = 6


@dataclass
class Tally:
    """What the writers were told: the ids acknowledged with 201 per kind, every status, and
    how many requests ended in a connection error (the killed worker's, or a stopped server's)."""

    issues: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def total(self) -> int:
        return len(self.issues) + len(self.comments) + len(self.attachments)


def test_an_app_worker_killed_under_concurrent_writes_leaves_no_half_written_change(
    tmp_path, media
):
    company = factories.CompanyFactory(issue_prefix="KILL")
    tokens = [board_token(company) for _ in range(WRITERS)]
    tally = Tally()
    stop = threading.Event()

    def write(i: int, server: AppServer) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                made = server.call(
                    "POST", f"/api/companies/{wire(company)}/issues", tokens[i], {"title": f"W{i}"}
                )
                answers = [("issues", made)]
                if made.status == 201:
                    issue_id = made.body["id"]
                    answers.append(
                        (
                            "comments",
                            server.call(
                                "POST",
                                f"/api/issues/{issue_id}/comments",
                                tokens[i],
                                {"body": f"Comment {i}.{n}"},
                            ),
                        )
                    )
                    answers.append(
                        ("attachments", upload(server, tokens[i], company, issue_id, b"x" * n))
                    )
            except OSError:  # the worker died under this request, or the server is gone
                with tally.lock:
                    tally.dropped += 1
                if server.process.poll() is not None:
                    return  # granian stopped: nothing more can be written
                time.sleep(POLL_SECONDS)  # not hammering a closed port meanwhile
                continue
            with tally.lock:
                for kind, answer in answers:
                    tally.statuses[answer.status] += 1
                    if answer.status == 201:
                        getattr(tally, kind).append(answer.body["id"])

    with app_server(tmp_path, workers=2, MEDIA_ROOT=str(media)) as server:
        wait_until(lambda: len(server.worker_pids()) == 2, "granian's two workers")
        threads = [threading.Thread(target=write, args=(i, server)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: tally.total() >= 60, "the writers to get going")
            victim = server.worker_pids()[0]
            os.kill(victim, signal.SIGKILL)
            killed_at = tally.total()
            # Keep writing a moment: to the other worker, to a respawned one, or to nothing
            # if granian stops once a worker died (the test does not depend on which).
            wait_until(
                lambda: tally.total() >= killed_at + 30 or server.process.poll() is not None,
                "more writes after the kill",
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=WAIT_SECONDS * 2)
        assert not any(thread.is_alive() for thread in threads), "a writer hung"
    print(f"acknowledged {tally.total()} writes, {tally.dropped} dropped, {dict(tally.statuses)}")

    assert set(tally.statuses) == {201}, tally.statuses  # an answer is a success or nothing

    issues = set(Issue.objects.filter(company=company).values_list("pk", flat=True))
    comments = set(Comment.objects.filter(issue__company=company).values_list("pk", flat=True))
    attachments = {a.pk: a for a in Attachment.objects.filter(company=company)}
    # No acknowledged write is lost.
    assert {stored(i, Issue) for i in tally.issues} <= issues
    assert {stored(c, Comment) for c in tally.comments} <= comments
    assert {stored(a, Attachment) for a in tally.attachments} <= set(attachments)

    # No half of one: each row with its activity row, each activity row with its row.
    def logged(action: str) -> Counter:
        rows = ActivityEvent.objects.filter(company=company, action=action)
        return Counter(rows.values_list("entity_id", flat=True))

    assert logged("issue.created") == dict.fromkeys(issues, 1)
    assert logged("issue.comment_added") == dict.fromkeys(comments, 1)
    assert logged("attachment.created") == dict.fromkeys(attachments, 1)
    # Each attachment with its whole file.
    for attachment in attachments.values():
        path = media / attachment.file.name
        assert path.is_file(), f"{attachment.pk} has no file"
        assert path.stat().st_size == attachment.byte_size
    # Files without a row are test_an_upload_killed_before_its_commit_leaves_no_orphan_file's
    # subject (a kill lands in that window only now and then): counted here, not asserted.
    orphans = stored_files(media) - {a.file.name for a in attachments.values()}
    print(f"{len(issues)} issues, {len(comments)} comments, {len(attachments)} attachments, "
          f"{len(orphans)} orphan files")  # fmt: skip


def test_an_upload_killed_before_its_commit_leaves_no_orphan_file_past_the_next_prune(
    tmp_path, media
):
    """The file is stored before its row commits (readers must find it once the row is there),
    so a worker killed in between leaves it behind; `prune` deletes such files once they are
    older than any upload in flight (`issues.retention.ORPHAN_GRACE`)."""
    company = factories.CompanyFactory(issue_prefix="ORPH")
    token = board_token(company)
    issue = factories.IssueFactory(company=company, status="todo")

    with app_server(tmp_path, MEDIA_ROOT=str(media)) as server:
        app_name = server.env["PGAPPNAME"]
        with psycopg.connect(worker_database_url(), application_name="faults-locks") as locks:
            # The upload's INSERT waits here, after its file was stored: kill it there.
            locks.execute(f"LOCK TABLE {Attachment._meta.db_table} IN SHARE MODE")
            sent = threading.Thread(
                target=lambda: _suppress_os_error(
                    lambda: upload(server, token, company, wire(issue), b"orphan?")
                )
            )
            sent.start()

            def blocked() -> bool:
                # Its file is stored and it waits on the lock (in the INSERT's parse, which
                # pg_stat_activity does not show as the statement yet).
                row = locks.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = %s"
                    " AND %s = ANY(pg_blocking_pids(pid))",
                    [app_name, locks.info.backend_pid],
                ).fetchone()
                return row is not None and bool(stored_files(media))

            wait_until(blocked, "the upload to store its file and wait on its INSERT")
            [worker] = server.worker_pids()
            os.kill(worker, signal.SIGKILL)
            sent.join(timeout=WAIT_SECONDS)
            wait_until(
                lambda: (
                    not locks.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE application_name = %s"
                        " AND %s = ANY(pg_blocking_pids(pid))",
                        [app_name, locks.info.backend_pid],
                    ).fetchone()
                ),
                "the killed worker's statement to end",
            )
            locks.rollback()

    assert not Attachment.objects.exists()
    assert not ActivityEvent.objects.filter(action="attachment.created").exists()
    left = stored_files(media)  # the killed upload's file: no row names it
    later = timezone.now() + retention.ORPHAN_GRACE + timedelta(minutes=1)

    swept = retention.prune(older_than=timedelta(days=90), now=later)

    assert len(left) == 1 and swept.orphan_files == 1
    assert stored_files(media) == set(), "a stored file with no attachment row"


def _suppress_os_error(call: Callable[[], object]) -> None:
    with contextlib.suppress(OSError):  # the worker was killed under it: expected
        call()


# -- PostgreSQL stopped and started under load -----------------------------------------------

CLIENTS = 4
UNAVAILABLE = {"error": "Database unavailable", "code": "database_unavailable"}


def cluster(action: str) -> None:
    """`pg_ctlcluster 15 main <action>`, as scripts/pg-prepare manages the local PostgreSQL."""
    done = subprocess.run(
        ["pg_ctlcluster", "15", "main", action], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def can_restart_postgres() -> bool:
    return bool(shutil.which("pg_ctlcluster")) and os.geteuid() == 0


def test_postgres_restarted_under_load_answers_503_with_retry_after_then_recovers(tmp_path):
    if not can_restart_postgres():
        pytest.skip("restarting PostgreSQL needs root and pg_ctlcluster (Debian's cluster)")
    company = factories.CompanyFactory(issue_prefix="PGR")
    tokens = [board_token(company) for _ in range(CLIENTS)]
    url = f"/api/companies/{wire(company)}/issues"
    answers: list[tuple[float, str, Answer]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(i: int, server: AppServer) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            method = "POST" if n % 2 else "GET"
            try:
                answer = server.call(
                    method, url, tokens[i], {"title": f"Load {i}.{n}"} if method == "POST" else None
                )
            except OSError as exc:  # the server itself must never drop a request
                with lock:
                    failures.append(exc)
                continue
            with lock:
                answers.append((time.monotonic(), method, answer))

    def count(status: int, since: float = 0.0) -> int:
        with lock:
            return sum(1 for at, _, a in answers if a.status == status and at >= since)

    with app_server(tmp_path) as server:
        threads = [threading.Thread(target=load, args=(i, server)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        connection.close()  # the test's own session dies with the restart: reconnect after it
        try:
            wait_until(lambda: count(200) >= 10 and count(201) >= 10, "the load to get going")
            stopped = time.monotonic()
            cluster("stop")
            try:
                wait_until(lambda: count(503, stopped) >= 10, "503s while PostgreSQL is down")
            finally:
                cluster("start")
            started = time.monotonic()
            # The same server, not restarted: both reads and writes succeed again.
            wait_until(
                lambda: count(200, started) >= 10 and count(201, started) >= 10,
                "successes after PostgreSQL is back",
                seconds=20,
            )
            with lock:
                first_success = min(
                    at for at, _, a in answers if at >= started and a.status in (200, 201)
                )
            recovered = first_success - started
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=WAIT_SECONDS * 2)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
        assert server.process.poll() is None, "the server died"

    statuses = Counter(a.status for _, _, a in answers)
    print(
        f"{len(answers)} answers {dict(statuses)}, down {started - stopped:.2f}s, "
        f"first success {recovered:.2f}s after the start"
    )
    assert not failures, failures[:3]
    assert set(statuses) <= {200, 201, 503}, [a for _, _, a in answers if a.status >= 400][:3]
    for _, _, answer in answers:
        if answer.status == 503:
            assert answer.body == UNAVAILABLE, answer.text
            assert answer.headers["retry-after"] == "5"
            assert answer.headers["content-type"].startswith("application/json")
    # Every acknowledged create is there, with its activity row.
    made = {stored(a.body["id"], Issue) for _, m, a in answers if m == "POST" and a.status == 201}
    issues = set(Issue.objects.filter(company=company).values_list("pk", flat=True))
    assert made <= issues
    logged = ActivityEvent.objects.filter(company=company, action="issue.created")
    assert Counter(logged.values_list("entity_id", flat=True)) == dict.fromkeys(issues, 1)


# -- the lock cleanup racing checkouts -------------------------------------------------------

STALE = 30  # rounds: in each, one run's lease expires and four racers go for its issue at once
CHECKED_OUT = "issue.checked_out"
ADOPTED = "issue.checkout_lock_adopted"
RELEASED = "issue.stale_lock_released"


def test_two_cleanups_racing_two_new_runs_for_stale_locks_release_none_twice_leave_none_stuck(
    agent, company
):
    dead = [live_run(agent) for _ in range(STALE)]  # their leases expire one round at a time
    issues = [
        factories.IssueFactory(
            company=company, status="in_progress", assignee_agent=agent, checkout_run=run
        )
        for run in dead
    ]
    runs = [live_run(agent), live_run(agent)]  # the agent's new runs
    # One key per run: a shared key's first use stamps its row and would line them up.
    clients = [
        client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run.pk) for run in runs
    ]

    def act(i: int, barrier: threading.Barrier) -> list:
        """Racers 0 and 1 are the new runs (adopt the stale lock, or take the released issue
        from todo); 2 and 3 run `manage.py release_stale_locks`."""
        answers = []
        for issue, run in zip(issues, dead, strict=True):
            if i == 0:  # the run died: nobody renews its lease
                HeartbeatRun.objects.filter(pk=run.pk).update(
                    lease_expires_at=timezone.now() - timedelta(seconds=1)
                )
            barrier.wait()  # the expiry is committed; all four go at once
            if i < 2:
                response = clients[i].post(
                    f"/api/issues/{issue.pk}/checkout",
                    {"expectedStatuses": ["todo", "in_progress"]},
                    format="json",
                )
                answers.append(response.status_code)
            else:
                out = StringIO()
                call_command("release_stale_locks", "--json", stdout=out)
                answers.append(json.loads(out.getvalue()))
            barrier.wait()  # the round is over before the next lease expires
        return answers

    first, second, *cleanups = race(4, act)

    summaries = [summary for passes in cleanups for summary in passes]
    released = Counter(
        ActivityEvent.objects.filter(action=RELEASED).values_list("issue_id", flat=True)
    )
    assert sum(s["releasedLocks"] for s in summaries) == sum(released.values())
    named = sorted(entry["issueId"] for s in summaries for entry in s["issues"])
    assert named == sorted(released.elements())
    outcomes = Counter()
    for n, issue in enumerate(issues):
        statuses = sorted([first[n], second[n]])
        assert statuses == [200, 409], (n, statuses)  # one run wins each issue, whatever came first
        winner = runs[0] if first[n] == 200 else runs[1]
        issue.refresh_from_db()
        # None stuck: the issue is held by the live run that won it.
        assert (issue.status, issue.checkout_run_id) == ("in_progress", winner.pk), n
        rows = ActivityEvent.objects.filter(issue_id=issue.pk)
        outcome = (
            released[issue.pk],
            rows.filter(action=ADOPTED).count(),
            rows.filter(action=CHECKED_OUT).count(),
        )
        # Released at most once, and only if the new run had not adopted the lock first (then
        # the winner took the issue from todo).
        assert outcome in {(0, 1, 0), (1, 0, 1)}, (n, outcome)
        outcomes[outcome] += 1
    assert not HeartbeatRun.objects.expired().exists()
    print(
        f"{STALE} stale locks: {outcomes[(1, 0, 1)]} released by a cleanup then checked out, "
        f"{outcomes[(0, 1, 0)]} adopted by a new run; {len(summaries)} cleanup passes"
    )
