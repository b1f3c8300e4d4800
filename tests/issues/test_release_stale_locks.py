"""`manage.py release_stale_locks` (DESIGN §3, ops lock cleanup).

It times out runs whose lease expired, then releases every checkout lock whose run is not live:
in_progress → todo, the assignee kept (the agent's next run picks the issue up again), one
activity row per issue. Live locks are untouched, `--dry-run` changes nothing, `--company`
limits the sweep, `--json` reports for machines, and a second pass is a no-op.
"""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from agents.models import Agent, HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Issue
from tests import factories
from tests.conftest import client_for
from tests.factories import live_run

pytestmark = pytest.mark.django_db

RELEASED = "issue.stale_lock_released"


def run_command(*args: str) -> str:
    out = StringIO()
    call_command("release_stale_locks", *args, stdout=out)
    return out.getvalue()


def run_json(*args: str) -> dict:
    return json.loads(run_command("--json", *args))


def expired_run(agent: Agent, status: str = "running") -> HeartbeatRun:
    return factories.HeartbeatRunFactory(
        agent=agent, status=status, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def finished_run(agent: Agent, status: str = "succeeded") -> HeartbeatRun:
    return factories.HeartbeatRunFactory(agent=agent, status=status, finished_at=timezone.now())


def locked(agent: Agent, run: HeartbeatRun) -> Issue:
    return factories.IssueFactory(
        company=agent.company,
        status="in_progress",
        assignee_agent=agent,
        checkout_run=run,
        started_at=timezone.now(),
    )


def state(issue: Issue) -> tuple:
    issue.refresh_from_db()
    return (issue.status, issue.assignee_agent_id, issue.checkout_run_id)


@pytest.fixture
def scene(agent):
    """One live lock, one lock held by a finished run, one by a run whose lease expired."""
    live = live_run(agent)
    done = finished_run(agent)
    dead = expired_run(agent)
    return {
        "live": (live, locked(agent, live)),
        "finished": (done, locked(agent, done)),
        "expired": (dead, locked(agent, dead)),
    }


def test_command_times_out_expired_runs_and_releases_stale_locks_keeping_the_assignee(agent, scene):
    live, live_issue = scene["live"]
    done, done_issue = scene["finished"]
    dead, dead_issue = scene["expired"]

    output = run_command()

    assert output.strip() == "timed out 1 expired run(s); released 2 stale lock(s)"
    assert state(done_issue) == ("todo", agent.pk, None)
    assert state(dead_issue) == ("todo", agent.pk, None)
    assert done_issue.execution_locked_at is None
    assert state(live_issue) == ("in_progress", agent.pk, live.pk)  # live locks untouched
    dead.refresh_from_db()
    assert (dead.status, dead.exit_reason) == ("timed_out", "lease_expired")
    assert dead.finished_at is not None
    done.refresh_from_db()
    live.refresh_from_db()
    assert (done.status, live.status) == ("succeeded", "running")


def test_command_writes_one_activity_row_per_released_issue(agent, scene):
    done, done_issue = scene["finished"]
    dead, dead_issue = scene["expired"]

    run_command()

    rows = ActivityEvent.objects.filter(action=RELEASED)
    assert sorted((row.issue_id, row.details["runId"]) for row in rows) == sorted(
        [(done_issue.pk, done.pk), (dead_issue.pk, dead.pk)]
    )
    assert {(row.actor_type, row.entity_id == row.issue_id) for row in rows} == {("system", True)}
    assert all(row.details["status"] == "todo" for row in rows)
    assert not ActivityEvent.objects.filter(issue_id=scene["live"][1].pk).exists()


@pytest.mark.parametrize("status", ["failed", "cancelled", "timed_out"])
def test_every_kind_of_finished_run_leaves_a_stale_lock(agent, status):
    issue = locked(agent, finished_run(agent, status))

    assert run_json()["releasedLocks"] == 1

    assert state(issue) == ("todo", agent.pk, None)


def test_queued_run_whose_lease_expired_is_timed_out_too(agent):
    queued = expired_run(agent, status="queued")

    summary = run_json()

    assert (summary["timedOutRuns"], summary["runs"]) == (1, [queued.pk])
    queued.refresh_from_db()
    assert queued.status == "timed_out"


def test_dry_run_reports_and_changes_nothing(agent, scene):
    dead, dead_issue = scene["expired"]
    done, done_issue = scene["finished"]

    output = run_command("--dry-run")

    assert output.strip() == "would time out 1 expired run(s); would release 2 stale lock(s)"
    assert state(dead_issue) == ("in_progress", agent.pk, dead.pk)
    assert state(done_issue) == ("in_progress", agent.pk, done.pk)
    dead.refresh_from_db()
    assert dead.status == "running"
    assert not ActivityEvent.objects.exists()


def test_dry_run_json_names_what_would_change(agent, scene):
    dead, dead_issue = scene["expired"]
    _, done_issue = scene["finished"]

    summary = run_json("--dry-run")

    assert (summary["dryRun"], summary["timedOutRuns"], summary["releasedLocks"]) == (True, 1, 2)
    assert summary["runs"] == [dead.pk]
    assert sorted(entry["issueId"] for entry in summary["issues"]) == sorted(
        [dead_issue.pk, done_issue.pk]
    )
    assert state(dead_issue) == ("in_progress", agent.pk, dead.pk)


def test_json_summary_counts_and_names_the_released_issues(agent, scene):
    dead, dead_issue = scene["expired"]
    done, done_issue = scene["finished"]

    summary = run_json()

    assert set(summary) >= {"timedOutRuns", "releasedLocks", "runs", "issues", "dryRun"}
    assert (summary["dryRun"], summary["timedOutRuns"], summary["releasedLocks"]) == (False, 1, 2)
    assert summary["runs"] == [dead.pk]
    assert sorted(summary["issues"], key=lambda entry: entry["issueId"]) == sorted(
        [
            {"issueId": dead_issue.pk, "identifier": dead_issue.identifier, "runId": dead.pk},
            {"issueId": done_issue.pk, "identifier": done_issue.identifier, "runId": done.pk},
        ],
        key=lambda entry: entry["issueId"],
    )


def test_second_pass_is_a_no_op(agent, scene):
    run_command()
    rows_after_first = ActivityEvent.objects.count()
    versions = dict(Issue.objects.values_list("pk", "version"))

    summary = run_json()

    assert (summary["timedOutRuns"], summary["releasedLocks"]) == (0, 0)
    assert (summary["runs"], summary["issues"]) == ([], [])
    assert ActivityEvent.objects.count() == rows_after_first
    assert dict(Issue.objects.values_list("pk", "version")) == versions
    assert ActivityEvent.objects.filter(action=RELEASED).count() == 2


def test_company_option_limits_the_sweep_to_one_company(agent, company, other_agent):
    ours_run, theirs_run = expired_run(agent), expired_run(other_agent)
    ours, theirs = locked(agent, ours_run), locked(other_agent, theirs_run)

    summary = run_json("--company", company.pk)

    assert (summary["timedOutRuns"], summary["releasedLocks"]) == (1, 1)
    assert state(ours) == ("todo", agent.pk, None)
    assert state(theirs) == ("in_progress", other_agent.pk, theirs_run.pk)
    theirs_run.refresh_from_db()
    assert theirs_run.status == "running"
    assert not ActivityEvent.objects.filter(company=theirs.company).exists()


def test_nothing_stale_reports_zero(agent):
    live = live_run(agent)
    issue = locked(agent, live)

    output = run_command()

    assert output.strip() == "timed out 0 expired run(s); released 0 stale lock(s)"
    assert state(issue) == ("in_progress", agent.pk, live.pk)


def test_verbosity_zero_prints_nothing_but_still_releases(agent):
    issue = locked(agent, finished_run(agent))

    output = run_command("--verbosity", "0")

    assert output == ""
    assert state(issue) == ("todo", agent.pk, None)


def test_verbosity_two_lists_each_released_issue(agent):
    run = finished_run(agent)
    issue = locked(agent, run)

    output = run_command("--verbosity", "2")

    assert f"{issue.identifier} (run {run.pk})" in output


def test_released_issue_is_picked_up_again_by_the_agents_next_run(agent):
    issue = locked(agent, expired_run(agent))
    run_command()
    new_run = live_run(agent)
    client = client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=new_run.pk)

    response = client.post(f"/api/issues/{issue.pk}/checkout", {}, format="json")

    assert response.status_code == 200, response.json()
    assert state(issue) == ("in_progress", agent.pk, new_run.pk)
