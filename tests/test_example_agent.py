"""The example agent (`examples/paperclip_agent.py`) follows reference 001 against a live server:
run as the process adapter runs it (a subprocess, the wake in its environment, the run token as
its only credential), it checks out its work, completes it through the API and never retries a
409."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from agents.models import Agent, HeartbeatRun
from agents.runs import mint_run_token
from companies.models import ActivityEvent
from issues.models import Approval, Comment, Document, Issue
from paperclip.api.wire import wire_id
from tests import factories
from tests.conftest import client_for
from tests.wire import stored

pytestmark = pytest.mark.django_db(transaction=True)

AGENT = Path(settings.BASE_DIR) / "examples" / "paperclip_agent.py"


@pytest.fixture
def run(agent):
    return factories.HeartbeatRunFactory(agent=agent, status="running", started_at=timezone.now())


@pytest.fixture
def wake(live_server, run):
    """Run the example agent as the process adapter would for `run`; answers what it did."""

    def wake(*args: str, **context: str) -> subprocess.CompletedProcess:
        env = {
            "PATH": os.environ["PATH"],
            "PAPERCLIP_API_URL": live_server.url,
            "PAPERCLIP_API_KEY": mint_run_token(run),
            "PAPERCLIP_AGENT_ID": wire_id(run.agent_id),
            "PAPERCLIP_COMPANY_ID": wire_id(run.company_id),
            "PAPERCLIP_RUN_ID": wire_id(run.pk),
        }
        env |= {f"PAPERCLIP_{name.upper()}": value for name, value in context.items()}
        return subprocess.run(
            [sys.executable, str(AGENT), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    return wake


def todo(agent, **fields) -> Issue:
    return factories.IssueFactory(
        company=agent.company, status="todo", assignee_agent=agent, **fields
    )


def test_it_checks_out_and_completes_an_assigned_todo_issue(wake, agent, run):
    issue = todo(agent, title="Add a health page", description="Serve /health.")

    done = wake(task_id=wire_id(issue.pk), wake_reason="issue_assigned")

    assert done.returncode == 0, done.stdout + done.stderr
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent_id) == ("done", agent.pk)
    plan = Document.objects.get(issue=issue, key="plan")
    assert plan.latest_revision.body.startswith(f"# Plan: {issue.identifier} Add a health page")
    assert "Serve /health." in plan.latest_revision.body
    (comment,) = Comment.objects.filter(issue=issue)
    assert (comment.author_agent_id, comment.run_id) == (agent.pk, run.pk)
    assert f"(run {wire_id(run.pk)})" in comment.body
    actions = ActivityEvent.objects.filter(issue_id=issue.pk, run_id=run.pk).values_list(
        "action", flat=True
    )
    assert {"issue.checked_out", "issue.comment_added", "issue.updated"} <= set(actions), actions
    assert f"checkout: {issue.identifier} is ours" in done.stdout
    assert f"update: {issue.identifier} is done; commented" in done.stdout


def test_an_issue_whose_description_asks_for_review_goes_to_in_review(wake, agent):
    issue = todo(agent, description="Please review the wording before it ships.")

    done = wake()

    assert done.returncode == 0, done.stdout + done.stderr
    issue.refresh_from_db()
    assert issue.status == "in_review"
    assert Document.objects.filter(issue=issue, key="plan").exists()


def test_the_task_of_the_wake_is_picked_before_a_more_urgent_one(wake, agent):
    urgent = todo(agent, title="Urgent", priority=0)
    woken_for = todo(agent, title="Woken for", priority=3)

    done = wake(task_id=wire_id(woken_for.pk))

    assert done.returncode == 0, done.stdout + done.stderr
    woken_for.refresh_from_db()
    urgent.refresh_from_db()
    assert (woken_for.status, urgent.status) == ("done", "todo")


def test_in_progress_work_comes_before_todo_and_blocked_is_skipped(wake, agent):
    blocked = todo(agent, title="Blocked", priority=0)
    Issue.objects.filter(pk=blocked.pk).update(status="blocked")
    todo(agent, title="Fresh", priority=0)
    old_run = factories.HeartbeatRunFactory(
        agent=agent, status="succeeded", lease_expires_at=timezone.now()
    )
    started = todo(agent, title="Started", priority=3)
    Issue.objects.filter(pk=started.pk).update(status="in_progress", checkout_run=old_run)

    done = wake()

    assert done.returncode == 0, done.stdout + done.stderr
    statuses = dict(Issue.objects.values_list("title", "status"))
    assert statuses == {"Blocked": "blocked", "Fresh": "todo", "Started": "done"}
    assert f"pick: skipping {blocked.identifier} (blocked)" in done.stdout


@pytest.mark.parametrize("holder", ["another agent", "another run of the same agent"])
def test_a_409_on_checkout_is_never_retried_and_the_next_pick_is_worked(wake, agent, run, holder):
    owner = factories.AgentFactory(company=agent.company) if holder == "another agent" else agent
    live = factories.HeartbeatRunFactory(agent=owner, status="running")
    taken = todo(agent, title="Taken", priority=0)
    Issue.objects.filter(pk=taken.pk).update(status="in_progress", checkout_run=live)
    taken.refresh_from_db()
    free = todo(agent, title="Free", priority=3)

    done = wake(task_id=wire_id(taken.pk))

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(f"checkout: {taken.identifier} -> 409, not retrying") == 1
    assert done.stdout.count("checkout:") == 2  # the 409, then the next pick
    before = taken
    taken.refresh_from_db()
    assert (taken.status, taken.checkout_run_id, taken.version) == (
        "in_progress",
        live.pk,
        before.version,
    )
    assert not ActivityEvent.objects.filter(issue_id=taken.pk, run_id=run.pk).exists()
    free.refresh_from_db()
    assert free.status == "done"


def test_a_409_on_its_only_issue_leaves_it_alone_and_exits_0(wake, agent, run):
    live = factories.HeartbeatRunFactory(agent=agent, status="running")
    taken = todo(agent)
    Issue.objects.filter(pk=taken.pk).update(status="in_progress", checkout_run=live)

    done = wake()

    assert done.returncode == 0, done.stdout + done.stderr
    assert "409, not retrying" in done.stdout
    assert "nothing to do: no issue could be checked out" in done.stdout
    assert not ActivityEvent.objects.filter(run_id=run.pk).exists()


def test_with_nothing_assigned_it_exits_0_having_written_nothing(wake, agent, run):
    factories.IssueFactory(company=agent.company, status="todo")  # nobody's
    todo(factories.AgentFactory(company=agent.company))  # someone else's

    done = wake(wake_reason="on_demand")

    assert done.returncode == 0, done.stdout + done.stderr
    assert "inbox: 0 issue(s)" in done.stdout
    assert not ActivityEvent.objects.filter(run_id=run.pk).exists()
    assert not Comment.objects.exists()


def test_an_approval_wake_comments_on_the_linked_issues(wake, agent, run):
    first = factories.IssueFactory(company=agent.company, status="backlog")
    second = factories.IssueFactory(company=agent.company, status="todo")
    approval = Approval.objects.create(
        company=agent.company,
        type="approve_ceo_strategy",
        status="approved",
        requested_by_agent=agent,
        decision_note="Go ahead.",
    )
    approval.issues.set([first, second])

    done = wake(
        approval_id=wire_id(approval.pk),
        approval_status="approved",
        linked_issue_ids=f"{wire_id(first.pk)},{wire_id(second.pk)}",
        wake_reason="approval_approved",
    )

    assert done.returncode == 0, done.stdout + done.stderr
    for issue in (first, second):
        (comment,) = Comment.objects.filter(issue=issue)
        assert (comment.author_agent_id, comment.run_id) == (agent.pk, run.pk)
        assert comment.body.startswith(
            f"Approval {wire_id(approval.pk)} (approve_ceo_strategy) is approved: Go ahead."
        )
    assert "inbox: 0 issue(s)" in done.stdout


def test_the_work_sees_the_waking_comment_and_the_ancestors_first(wake, agent, company):
    parent = factories.IssueFactory(company=company, title="Launch", status="todo")
    issue = todo(agent, title="Write the page", parent=parent)
    factories.CommentFactory(issue=issue, body="An older remark")
    waking = factories.CommentFactory(issue=issue, body="Use the blue logo")

    done = wake(task_id=wire_id(issue.pk), wake_comment_id=wire_id(waking.pk))

    assert done.returncode == 0, done.stdout + done.stderr
    body = Document.objects.get(issue=issue, key="plan").latest_revision.body
    assert f"- part of {parent.identifier} Launch" in body
    assert "## Asked for\n\nUse the blue logo" in body
    assert f"context: woken by comment {wire_id(waking.pk)}" in done.stdout


WORK_WITH_A_SUBTASK = """
from paperclip_agent import Outcome, Subtask

def work(client, issue, context):
    first = context.comments[0]["body"] if context.comments else ""
    return Outcome(
        status="in_review",
        comment=f"Split it; first comment read: {first}",
        subtasks=[Subtask(title="Write the tests", description="For " + issue["identifier"])],
    )
"""


def test_a_plugged_in_work_function_can_delegate_a_subtask_under_the_issue(
    wake, agent, company, tmp_path
):
    goal = factories.GoalFactory(company=company)
    issue = todo(agent, title="Big job", goal=goal)
    factories.CommentFactory(issue=issue, body="Hello")
    work = tmp_path / "my_work.py"
    work.write_text(WORK_WITH_A_SUBTASK)

    done = wake("--work", f"{work}:work")

    assert done.returncode == 0, done.stdout + done.stderr
    issue.refresh_from_db()
    assert issue.status == "in_review"
    (subtask,) = Issue.objects.filter(parent=issue)
    assert (subtask.title, subtask.goal_id, subtask.description) == (
        "Write the tests",
        goal.pk,
        f"For {issue.identifier}",
    )
    comment = Comment.objects.get(issue=issue, author_agent=agent)
    assert comment.body == (
        f"Split it; first comment read: Hello\n\nSubtasks: {subtask.identifier}"
    )


def test_an_unexpected_error_exits_1_with_the_reason_in_the_log(wake, agent, tmp_path):
    todo(agent)
    work = tmp_path / "broken.py"
    work.write_text("def work(client, issue, context):\n    raise RuntimeError('no disk')\n")

    done = wake("--work", f"{work}:work")

    assert done.returncode == 1
    assert "RuntimeError: no disk" in done.stdout
    assert "exit 1" in done.stdout


# -- the demo: bootstrap_demo runs the Engineer with this agent ----------------------------------


@pytest.fixture
def demo(settings, tmp_path, live_server) -> dict:
    """`bootstrap_demo` as `make run` calls it, its credentials file out of the project's var/,
    the worker's PAPERCLIP_API_URL pointing at the live server."""
    settings.PAPERCLIP_DEMO_CREDENTIALS = str(tmp_path / "demo-credentials.json")
    settings.PAPERCLIP_API_URL = live_server.url
    out = StringIO()
    call_command("bootstrap_demo", "--json", stdout=out)
    return json.loads(out.getvalue())


def run_agents_worker() -> None:
    """`manage.py db_worker --batch --queue-name agents`, as `make run` runs it, until the queue
    is empty; the signal handlers it installs are put back afterwards."""
    signals = (signal.SIGINT, signal.SIGTERM)
    saved = {sig: signal.getsignal(sig) for sig in signals}
    try:
        call_command(
            "db_worker", "--batch", "--no-startup-delay", "--no-reload", "--queue-name", "agents",
            stdout=StringIO(),
        )  # fmt: skip
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def engineer(demo: dict) -> Agent:
    (entry,) = [a for a in demo["agents"] if a["name"] == "Engineer"]
    return Agent.objects.get(pk=stored(entry["id"], Agent))


def test_bootstrap_demo_runs_the_engineer_with_the_example_agent_once(demo):
    agent = engineer(demo)

    assert (agent.adapter_type, agent.adapter_config) == (
        "process",
        {"command": sys.executable, "args": [str(AGENT)], "timeoutSec": 120, "graceSec": 5},
    )
    again = StringIO()
    call_command("bootstrap_demo", stdout=again)
    assert "Demo already complete" in again.getvalue()


def test_bootstrap_demo_keeps_a_command_the_board_chose(demo):
    agent = engineer(demo)
    mine = {"command": "/usr/local/bin/my-agent", "args": ["--fast"]}
    Agent.objects.filter(pk=agent.pk).update(adapter_config=mine)

    call_command("bootstrap_demo", stdout=StringIO())

    agent.refresh_from_db()
    assert agent.adapter_config == mine


def test_an_issue_the_board_assigns_to_the_demo_engineer_is_done_by_the_worker(demo):
    agent = engineer(demo)
    board = client_for(demo["board"]["token"])

    created = board.post(
        f"/api/companies/{demo['company']['id']}/issues",
        {"title": "Say hello", "assigneeAgentId": wire_id(agent.pk), "status": "todo"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    run_agents_worker()

    issue = Issue.objects.get(pk=stored(created.json()["id"], Issue))
    (run,) = HeartbeatRun.objects.filter(agent=agent)
    assert (issue.status, run.status, run.exit_code) == ("done", "succeeded", 0)
    assert Document.objects.filter(issue=issue, key="plan").exists()
    assert Comment.objects.get(issue=issue, author_agent=agent).run_id == run.pk
    assert f"update: {issue.identifier} is done; commented" in run.log_tail


def test_run_by_hand_with_an_api_key_it_starts_and_finishes_a_woken_run(live_server, agent):
    """README's recipe: wake an agent whose adapter runs nothing, then run the example with the
    agent's API key and the run's id."""
    key = factories.AgentApiKeyFactory(agent=agent).token
    issue = todo(agent)
    woken = client_for(key).post(f"/api/agents/{wire_id(agent.pk)}/wakeup", {}, format="json")
    assert woken.status_code == 202, woken.json()
    env = {
        "PATH": os.environ["PATH"],
        "PAPERCLIP_API_URL": live_server.url,
        "PAPERCLIP_API_KEY": key,
        "PAPERCLIP_RUN_ID": woken.json()["id"],
    }

    done = subprocess.run(
        [sys.executable, str(AGENT), "--finish-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    run = HeartbeatRun.objects.get(pk=stored(woken.json()["id"], HeartbeatRun))
    issue.refresh_from_db()
    assert (run.status, issue.status) == ("succeeded", "done")
