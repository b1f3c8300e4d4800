"""The process adapter with the real worker (issue 13): a wake of a process agent runs its command.

Real `manage.py db_worker` processes on the test database run `agents.process.run_process`; the
agent's command is a small Python script (`AGENT`, written to the test's tmp dir) that does what
the test names, and calls the API the test serves (`live_server`) with the run token it gets in
its environment. The tests wait on the database (never a fixed sleep) and assert what the board
sees: the issue, the run over `/api`, its log.

PostgreSQL only: the worker is another process and must see the test's committed rows.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from agents.models import Agent, HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Comment, Issue
from tests import factories
from tests.conftest import client_for
from tests.issues.test_worker_killed import POLL_SECONDS, Workers, wait_for
from tests.wire import stored, wire

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Status = HeartbeatRun.Status
TERMINAL = {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT}
# Far longer than any test waits for a command: a command still sleeping was stopped, or the
# test failed (and the fixture kills it).
LONG_SLEEP = 120

# The agent: `python agent.py <what> [args]`. It records its pid (so the test can see it is gone
# and clean up after a failure) and then does what it is told.
AGENT = r'''
import json, os, signal, sys, time, urllib.request
from pathlib import Path

here = Path(sys.argv[0]).parent
what, args = sys.argv[1], sys.argv[2:]
(here / "pids").mkdir(exist_ok=True)
(here / "pids" / str(os.getpid())).write_text(os.environ.get("PAPERCLIP_RUN_ID", ""))
print(f"agent {what} starting", flush=True)


def call(method, path, body=None):
    """The API as an agent calls it: the run token, and the run id on every request."""
    request = urllib.request.Request(
        os.environ["PAPERCLIP_API_URL"].rstrip("/") + "/api" + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Authorization": "Bearer " + os.environ["PAPERCLIP_API_KEY"],
            "X-Paperclip-Run-Id": os.environ["PAPERCLIP_RUN_ID"],
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    print(method, path, response.status, flush=True)
    return answer


def wait_for_file(name):
    while not (here / name).exists():
        time.sleep(0.05)


task = os.environ.get("PAPERCLIP_TASK_ID")
if what == "work":  # Reference 001, in short: check out, say what was done, finish the issue
    call("POST", f"/issues/{task}/checkout", {})
    call("POST", f"/issues/{task}/comments", {"body": "Wrote the plan; closing."})
    call("PATCH", f"/issues/{task}", {"status": "done"})
elif what == "fail":  # takes the issue, then crashes
    call("POST", f"/issues/{task}/checkout", {})
    print("Traceback (most recent call last): boom", file=sys.stderr, flush=True)
    sys.exit(1)
elif what == "sleep":
    (here / f"started-{os.getpid()}").touch()
    time.sleep(float(args[0]))
elif what == "stubborn":  # ignores the polite stop
    signal.signal(signal.SIGTERM, lambda *_: print("SIGTERM ignored", flush=True))
    (here / f"started-{os.getpid()}").touch()
    deadline = time.monotonic() + float(args[0])
    while time.monotonic() < deadline:
        time.sleep(0.05)
elif what == "track":  # one line per run in a shared file: when it started and ended
    start = time.time()
    wait_for_file(args[0]) if args else time.sleep(0.5)
    with open(here / "track.jsonl", "a") as track:
        track.write(json.dumps({"run": os.environ["PAPERCLIP_RUN_ID"], "task": task,
                                "start": start, "end": time.time()}) + "\n")
elif what == "print-then-wait":
    print("first line of the work", flush=True)
    wait_for_file(args[0])
print(f"agent {what} finished", flush=True)
'''


@dataclass
class AgentWorkers(Workers):
    """`manage.py db_worker` on the `agents` and `default` queues, as `make run` starts it,
    serving the API at `api_url` to the commands and keeping logs in `media`."""

    api_url: str = ""
    media: Path = Path()
    lease_seconds: int = django_settings.PAPERCLIP_LEASE_SECONDS

    def env(self) -> dict[str, str]:
        return super().env() | {
            "PAPERCLIP_API_URL": self.api_url,
            "MEDIA_ROOT": str(self.media),
            "PAPERCLIP_STORAGE": "filesystem",
            "PAPERCLIP_LEASE_SECONDS": str(self.lease_seconds),
        }

    def command(self, worker_id: str, *args: str) -> list[str]:
        manage = str(Path(django_settings.BASE_DIR) / "manage.py")
        options = ["--queue-name", "agents,default", "--no-reload", "--no-startup-delay"]
        options += ["--interval", "0.2", "--worker-id", worker_id]
        return [sys.executable, manage, "db_worker", *options, *args]

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')}"
            for path in sorted(self.log_dir.glob("worker-*.log"))
        )

    def start_pool(self, count: int) -> None:
        for n in range(count):
            self.start(f"worker-{n}")


@pytest.fixture
def home(tmp_path) -> Path:
    """The agent's script and what its runs leave behind (pids, marker files)."""
    folder = tmp_path / "agent"
    folder.mkdir()
    (folder / "agent.py").write_text(AGENT)
    return folder


@pytest.fixture
def workers(tmp_path, live_server, media, home) -> Iterator[AgentWorkers]:
    logs = tmp_path / "workers"
    logs.mkdir()
    pool = AgentWorkers(log_dir=logs, api_url=live_server.url, media=media)
    try:
        yield pool
    finally:
        pool.close()
        kill_leftover_commands(home)


def kill_leftover_commands(home: Path) -> None:
    """A command outlives a killed worker (its own session): stop any a failed test left."""
    for pid_file in (home / "pids").glob("*") if (home / "pids").exists() else ():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(int(pid_file.name), signal.SIGKILL)


def process_agent(company, home: Path, *args: str, **config) -> Agent:
    return factories.AgentFactory(
        company=company,
        name=f"Runner {args[0] if args else ''}".strip(),
        adapter_type=Agent.Adapter.PROCESS,
        adapter_config={
            "command": sys.executable,
            "args": [str(home / "agent.py"), *args],
            "cwd": str(home),
            **config,
        },
    )


def assign(board, company, agent: Agent, title: str = "Write the plan") -> Issue:
    """The board creates an issue assigned to the agent: the wake that queues its run."""
    response = board.post(
        f"/api/companies/{company.pk}/issues",
        {"title": title, "status": "todo", "assigneeAgentId": wire(agent)},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return Issue.objects.get(pk=stored(response.json()["id"], Issue))


def run_of(issue: Issue) -> HeartbeatRun:
    return HeartbeatRun.objects.get(issue_id=issue.pk)


def ended(run: HeartbeatRun, workers: AgentWorkers) -> HeartbeatRun:
    """The run once its command has exited and the worker saved its log (`run_exited`)."""

    def done():
        run.refresh_from_db()
        return run.log_file.name != ""

    try:
        wait_for(done, f"run {run.pk} to end")
    except AssertionError:
        raise AssertionError(f"{run.status}\n{workers.logs()}") from None
    return run


def started(run: HeartbeatRun, home: Path) -> int:
    """The pid of the command once it has started (its marker file is there)."""
    wait_for(lambda: HeartbeatRun.objects.get(pk=run.pk).status != Status.QUEUED, "the start")
    marker = wait_for(lambda: next(home.glob("started-*"), None), "the command to start")
    return int(marker.name.removeprefix("started-"))


def gone(pid: int) -> bool:
    """The command's process is no more (the worker reaped it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def log_text(board, run: HeartbeatRun) -> str:
    response = board.get(f"/api/heartbeat-runs/{run.pk}/log")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode()


def run_json(board, run: HeartbeatRun) -> dict:
    response = board.get(f"/api/heartbeat-runs/{run.pk}")
    assert response.status_code == 200, response.json()
    return response.json()


# -- an assignment gets done -------------------------------------------------------------------


def test_an_assignment_runs_the_command_which_completes_the_issue_through_the_api(
    board, company, home, workers
):
    agent = process_agent(company, home, "work")
    workers.start_pool(1)

    issue = assign(board, company, agent)
    run = ended(run_of(issue), workers)

    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id) == ("done", agent.pk)
    [comment] = Comment.objects.filter(issue=issue)
    assert (comment.body, comment.author_agent_id, comment.run_id) == (
        "Wrote the plan; closing.",
        agent.pk,
        run.pk,
    )
    by_agent = ActivityEvent.objects.filter(issue_id=issue.pk, actor_type="agent")
    assert {row.run_id for row in by_agent} == {run.pk}
    assert {"issue.checked_out", "issue.comment_added", "issue.updated"} <= {
        row.action for row in by_agent
    }
    body = run_json(board, run)
    assert (body["status"], body["exitCode"], body["error"]) == ("succeeded", 0, "")
    assert (body["invocationSource"], body["wakeReason"]) == ("assignment", "issue_assigned")
    log = log_text(board, run)
    assert log.splitlines() == [
        "agent work starting",
        f"POST /issues/{wire(issue)}/checkout 200",
        f"POST /issues/{wire(issue)}/comments 201",
        f"PATCH /issues/{wire(issue)} 200",
        "agent work finished",
    ]
    assert body["logTail"] == log
    assert list(
        ActivityEvent.objects.filter(entity_id=run.pk)
        .order_by("created_at", "id")
        .values_list("action", flat=True)
    ) == ["run.started", "run.finished"]


def test_the_command_gets_the_wake_context_and_the_run_token_and_nothing_of_the_server(
    board, company, home, workers
):
    env_binary = shutil.which("env")
    agent = factories.AgentFactory(
        company=company,
        name="Env",
        adapter_type=Agent.Adapter.PROCESS,
        adapter_config={"command": env_binary, "env": {"GREETING": "hello"}},
    )
    workers.start_pool(1)
    server_env = workers.env()
    assert {"DATABASE_URL", "SECRET_KEY"} <= set(server_env)  # what the worker itself has

    issue = assign(board, company, agent)
    run = ended(run_of(issue), workers)

    env = dict(line.split("=", 1) for line in log_text(board, run).splitlines())
    paperclip = {name for name in env if name.startswith("PAPERCLIP_")}
    assert paperclip == {
        "PAPERCLIP_API_URL",
        "PAPERCLIP_API_KEY",
        "PAPERCLIP_AGENT_ID",
        "PAPERCLIP_COMPANY_ID",
        "PAPERCLIP_RUN_ID",
        "PAPERCLIP_TASK_ID",
        "PAPERCLIP_WAKE_REASON",
    }  # a wake with no comment, approval or linked issues leaves those names out
    assert set(env) - paperclip == {"GREETING"} | (
        {"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"} & set(server_env)
    )
    assert env["GREETING"] == "hello"
    assert (env["PATH"], env.get("HOME")) == (server_env["PATH"], server_env.get("HOME"))
    assert {
        name: env[name]
        for name in (
            "PAPERCLIP_API_URL",
            "PAPERCLIP_AGENT_ID",
            "PAPERCLIP_COMPANY_ID",
            "PAPERCLIP_RUN_ID",
            "PAPERCLIP_TASK_ID",
            "PAPERCLIP_WAKE_REASON",
        )
    } == {
        "PAPERCLIP_API_URL": workers.api_url,
        "PAPERCLIP_AGENT_ID": wire(agent),
        "PAPERCLIP_COMPANY_ID": wire(company),
        "PAPERCLIP_RUN_ID": wire(run),
        "PAPERCLIP_TASK_ID": wire(issue),
        "PAPERCLIP_WAKE_REASON": "issue_assigned",
    }
    # The run token speaks for this run of this agent, and only while it lives.
    me = client_for(env["PAPERCLIP_API_KEY"]).get("/api/agents/me")
    assert me.status_code == 401  # the run has ended
    for secret in (server_env["DATABASE_URL"], server_env["SECRET_KEY"]):
        assert secret not in log_text(board, run)


# -- how a command ends ------------------------------------------------------------------------


def test_a_command_that_exits_1_fails_its_run_and_leaves_its_lock_stale(
    board, company, home, workers
):
    agent = process_agent(company, home, "fail")
    workers.start_pool(1)

    issue = assign(board, company, agent)
    run = ended(run_of(issue), workers)

    body = run_json(board, run)
    assert (body["status"], body["exitCode"], body["isLive"]) == ("failed", 1, False)
    assert body["error"] == "The command exited with 1"
    assert "Traceback (most recent call last): boom" in log_text(board, run)
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run_id) == ("in_progress", run.pk)
    assert list(Issue.objects.stale_locks()) == [issue]


def test_a_command_past_its_timeout_is_terminated_and_its_run_timed_out(
    board, company, home, workers
):
    agent = process_agent(company, home, "sleep", str(LONG_SLEEP), timeoutSec=1, graceSec=5)
    workers.start_pool(1)

    issue = assign(board, company, agent)
    pid = started(run_of(issue), home)
    run = ended(run_of(issue), workers)

    assert gone(pid)
    assert run.finished_at - run.started_at < timedelta(seconds=LONG_SLEEP / 4)
    body = run_json(board, run)
    assert (body["status"], body["exitCode"], body["exitReason"]) == (
        "timed_out",
        -signal.SIGTERM,  # it stopped when asked: no SIGKILL needed
        "timeout",
    )
    assert log_text(board, run) == "agent sleep starting\n"


def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(board, company, home, workers):
    agent = process_agent(company, home, "stubborn", str(LONG_SLEEP), timeoutSec=1, graceSec=1)
    workers.start_pool(1)

    issue = assign(board, company, agent)
    pid = started(run_of(issue), home)
    run = ended(run_of(issue), workers)

    assert gone(pid)
    body = run_json(board, run)
    assert (body["status"], body["exitCode"]) == ("timed_out", -signal.SIGKILL)
    assert log_text(board, run) == "agent stubborn starting\nSIGTERM ignored\n"


def test_the_boards_cancel_stops_the_running_command_and_the_run_stays_cancelled(
    board, company, home, workers
):
    agent = process_agent(company, home, "sleep", str(LONG_SLEEP))
    workers.start_pool(1)
    issue = assign(board, company, agent)
    run = run_of(issue)
    pid = started(run, home)

    cancelled = board.post(f"/api/heartbeat-runs/{run.pk}/cancel")
    stop_asked = time.monotonic()

    assert cancelled.status_code == 200, cancelled.json()
    assert cancelled.json()["status"] == "cancelled"
    run = ended(run, workers)
    assert time.monotonic() - stop_asked < LONG_SLEEP / 4
    assert gone(pid)
    body = run_json(board, run)
    assert (body["status"], body["exitReason"], body["exitCode"]) == (
        "cancelled",
        "cancelled_by_board",
        -signal.SIGTERM,
    )
    assert log_text(board, run) == "agent sleep starting\n"
    assert ActivityEvent.objects.filter(entity_id=run.pk, action="run.finished").count() == 0


# -- one at a time, none lost, none while paused -----------------------------------------------


def test_three_wakes_for_a_busy_agent_run_one_at_a_time_and_none_is_lost(
    board, company, home, workers
):
    agent = process_agent(company, home, "track")
    workers.start_pool(2)  # two workers could start two runs at once: the agent allows one

    issues = [assign(board, company, agent, f"Task {n}") for n in range(3)]
    runs = [ended(run_of(issue), workers) for issue in issues]

    assert [run.status for run in runs] == ["succeeded"] * 3
    assert [run.exit_code for run in runs] == [0, 0, 0]
    lines = [json.loads(line) for line in (home / "track.jsonl").read_text().splitlines()]
    assert sorted(line["run"] for line in lines) == sorted(wire(runs))  # each ran exactly once
    spans = sorted((line["start"], line["end"]) for line in lines)
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert first_end <= second_start, spans  # never two at a time
    assert HeartbeatRun.objects.filter(agent=agent).count() == 3


def test_a_paused_agents_queued_runs_wait_and_start_once_it_is_resumed(
    board, company, home, workers
):
    agent = process_agent(company, home, "track", "go")
    workers.start_pool(1)
    first = assign(board, company, agent, "First")
    wait_for(lambda: run_of(first).status == Status.RUNNING, "the first run to start")
    waiting = [assign(board, company, agent, f"Waiting {n}") for n in range(2)]

    paused = board.post(f"/api/agents/{agent.pk}/pause")
    assert paused.status_code == 200, paused.json()
    (home / "go").touch()  # the first run ends while the agent is paused
    assert ended(run_of(first), workers).status == Status.SUCCEEDED
    # The worker tried each waiting run and left it queued.
    wait_for(
        lambda: not_started_attempts(waiting) == len(waiting),
        "the worker to try the waiting runs",
    )

    assert [run_of(issue).status for issue in waiting] == ["queued", "queued"]
    assert [run_of(issue).started_at for issue in waiting] == [None, None]
    resumed_at = timezone.now()
    resumed = board.post(f"/api/agents/{agent.pk}/resume")
    assert resumed.status_code == 200, resumed.json()
    runs = [ended(run_of(issue), workers) for issue in waiting]
    assert [run.status for run in runs] == ["succeeded", "succeeded"]
    assert min(run.started_at for run in runs) >= resumed_at


def not_started_attempts(issues: list[Issue]) -> int:
    """How many `run_process` tasks for these issues' runs ended without starting them."""
    run_ids = [run_of(issue).pk for issue in issues]
    return DBTaskResult.objects.filter(
        task_path="agents.process.run_process",
        status="SUCCESSFUL",
        args_kwargs__args__0__in=run_ids,
        return_value="not started",
    ).count()


# -- output while it runs ----------------------------------------------------------------------


def test_a_running_commands_output_is_readable_within_seconds(board, company, home, workers):
    agent = process_agent(company, home, "print-then-wait", "go")
    workers.start_pool(1)
    issue = assign(board, company, agent)
    run = run_of(issue)

    def tail_served():
        response = board.get(f"/api/heartbeat-runs/{run.pk}/log")
        return response.status_code == 200 and response

    response = wait_for(tail_served, "the running command's output")  # the tail, every 5 s

    so_far = "agent print-then-wait starting\nfirst line of the work\n"
    assert response.content.decode() == so_far
    body = run_json(board, run)
    assert (body["status"], body["isLive"], body["exitCode"], body["logTail"]) == (
        "running",
        True,
        None,
        so_far,
    )
    (home / "go").touch()
    assert ended(run, workers).status == Status.SUCCEEDED
    assert log_text(board, run) == so_far + "agent print-then-wait finished\n"


def test_a_command_that_outlives_a_short_lease_keeps_its_run_live(board, company, home, workers):
    workers.lease_seconds = 3  # the worker should renew it every second
    agent = process_agent(company, home, "sleep", str(LONG_SLEEP))
    workers.start_pool(1)
    run = run_of(assign(board, company, agent))
    started(run, home)
    run.refresh_from_db()
    wait_for(lambda: timezone.now() > run.started_at + timedelta(seconds=4), "a lease's length")

    body = run_json(board, run)

    assert (body["status"], body["isLive"]) == ("running", True)
    assert HeartbeatRun.objects.get(pk=run.pk).lease_renewals >= 1


# -- a worker killed mid-run -------------------------------------------------------------------


def test_a_run_waiting_behind_a_run_whose_worker_died_starts_once_the_cleanup_times_it_out(
    board, company, home, workers
):
    agent = process_agent(company, home, "sleep", str(LONG_SLEEP))
    workers.start("doomed")
    first = assign(board, company, agent, "First")
    pid = started(run_of(first), home)
    workers.start("survivor")
    second = assign(board, company, agent, "Second")
    wait_for(lambda: not_started_attempts([second]) == 1, "the survivor to try the second run")

    workers.kill(workers.processes[0])  # the run's worker dies; its command with it
    os.killpg(pid, signal.SIGKILL)
    HeartbeatRun.objects.filter(pk=run_of(first).pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    call_command("release_stale_locks", stdout=StringIO())
    assert run_of(first).status == Status.TIMED_OUT

    deadline = time.monotonic() + 5  # the survivor polls every 0.2 s
    while run_of(second).status == Status.QUEUED and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    assert run_of(second).status == Status.RUNNING


# -- the example agent, end to end --------------------------------------------------------------


def test_an_assignment_runs_the_example_agent_which_completes_the_issue(board, company, workers):
    """The new user's demo, with the real worker: the board assigns an issue to an agent whose
    command is `examples/paperclip_agent.py`, and the issue is done through the API."""
    example = Path(django_settings.BASE_DIR) / "examples" / "paperclip_agent.py"
    agent = factories.AgentFactory(
        company=company,
        name="Engineer",
        adapter_type=Agent.Adapter.PROCESS,
        adapter_config={"command": sys.executable, "args": [str(example)], "timeoutSec": 60},
    )
    workers.start_pool(1)

    issue = assign(board, company, agent, "Say hello")
    run = ended(run_of(issue), workers)

    issue.refresh_from_db()
    assert (issue.status, run.status, run.exit_code) == ("done", Status.SUCCEEDED, 0)
    comment = Comment.objects.get(issue=issue, author_agent=agent)
    assert comment.run_id == run.pk
    plan = board.get(f"/api/issues/{issue.pk}/documents/plan")
    assert plan.status_code == 200, plan.json()
    by_the_run = set(
        ActivityEvent.objects.filter(issue_id=issue.pk, run_id=run.pk).values_list(
            "action", flat=True
        )
    )
    assert {"issue.checked_out", "issue.comment_added", "issue.updated"} <= by_the_run
    assert f"{issue.identifier} is done" in log_text(board, run)
