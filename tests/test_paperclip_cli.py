"""Paperclip's own CLI (npm `paperclipai`, pinned in scripts/paperclip-cli) works against this
server unchanged: the everyday board and agent commands, run as a user runs them, against a
live server on this test's database (DESIGN §5: `/api` speaks Paperclip's dialect, UUIDs and
all).

The CLI and the Node 24 it runs on are installed once into a cache outside the checkout; where
npm cannot reach its registry, these tests are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from agents.models import HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Approval, Comment, Document, Goal, Issue, Project
from tests import factories
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = Path(settings.BASE_DIR) / "scripts" / "paperclip-cli"


@pytest.fixture(scope="session")
def cli_installed() -> Path:
    try:
        done = subprocess.run(
            [SCRIPT, "--install"], capture_output=True, text=True, timeout=900, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.skip("Paperclip's CLI could not be installed: npm took over 15 minutes")
    if done.returncode == 3:
        reason = (done.stderr.strip().splitlines() or ["npm failed"])[-1]
        pytest.skip(f"Paperclip's CLI could not be installed from npm: {reason}")
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


class Cli:
    """`paperclipai <command> --api-base <live server> --api-key <key> --json`, its output
    parsed; a failing command fails the test with what the CLI printed."""

    def __init__(self, base_url: str, home: Path, cache: Path):
        self.base_url, self.home, self.cache = base_url, home, cache

    def __call__(self, *args: str, key: str, run_id: str | None = None) -> Any:
        command = [str(SCRIPT), *args, "--api-base", self.base_url, "--api-key", key, "--json"]
        command += ["--data-dir", str(self.home)] + (["--run-id", run_id] if run_id else [])
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            # No profile of the user's own; the CLI from the cache it was installed into.
            env={**os.environ, "HOME": str(self.home), "PAPERCLIP_CLI_CACHE": str(self.cache)},
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return json.loads(done.stdout)


@pytest.fixture
def cli(cli_installed, live_server, tmp_path) -> Cli:
    return Cli(live_server.url, tmp_path, cli_installed)


@pytest.fixture
def board_key(board_user) -> str:
    return factories.BoardTokenFactory(user=board_user).token


@pytest.fixture
def agent_key(agent) -> str:
    return factories.AgentApiKeyFactory(agent=agent).token


def test_the_board_lists_and_reads_companies_and_agents(cli, board_key, company, agent):
    companies = cli("company", "list", key=board_key)
    one = cli("company", "get", wire(company), key=board_key)
    agents = cli("agent", "list", "-C", wire(company), key=board_key)
    builder = cli("agent", "get", wire(agent), key=board_key)

    assert [(c["id"], c["name"]) for c in companies] == [(wire(company), "Acme Robotics")]
    assert (one["id"], one["issuePrefix"]) == (wire(company), "ACM")
    assert [(a["id"], a["name"]) for a in agents] == [(wire(agent), "Builder")]
    assert (builder["id"], builder["companyId"]) == (wire(agent), wire(company))


def test_an_agent_reads_itself_and_its_inbox(cli, agent_key, company, agent):
    mine = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    factories.IssueFactory(company=company, status="todo")

    me = cli("agent", "me", key=agent_key)
    inbox = cli("agent", "inbox", key=agent_key)

    assert (me["id"], me["name"]) == (wire(agent), "Builder")
    assert [(i["id"], i["identifier"]) for i in inbox] == [(wire(mine), mine.identifier)]


def test_goals_and_projects_are_created_and_listed_in_paperclips_vocabulary(
    cli, board_key, company, agent
):
    goal = cli(
        "goal", "create", "-C", wire(company), "--title", "Ship v1", "--level", "company",
        "--status", "active", key=board_key,
    )  # fmt: skip
    project = cli(
        "project", "create", "-C", wire(company), "--name", "Rocket", "--status", "backlog",
        "--goal-ids", goal["id"], "--lead-agent-id", wire(agent), key=board_key,
    )  # fmt: skip
    goals = cli("goal", "list", "-C", wire(company), key=board_key)
    projects = cli("project", "list", "-C", wire(company), key=board_key)

    assert Goal.objects.get(pk=stored(goal["id"], Goal)).title == "Ship v1"
    made = Project.objects.get(pk=stored(project["id"], Project))
    assert (made.name, made.status, made.lead_agent_id) == ("Rocket", "backlog", agent.pk)
    assert [g["id"] for g in goals] == [goal["id"]]
    assert [(p["id"], p["status"], p["goalIds"]) for p in projects] == [
        (project["id"], "backlog", [goal["id"]])
    ]


def test_the_board_creates_lists_reads_updates_comments_and_deletes_issues(
    cli, board_key, company, agent
):
    goal = factories.GoalFactory(company=company)
    project = factories.ProjectFactory(company=company)
    parent = factories.IssueFactory(company=company, status="todo")
    doomed = factories.IssueFactory(company=company, status="backlog")
    helper = factories.AgentFactory(company=company, name="Helper")
    issue = cli(
        "issue", "create", "-C", wire(company), "--title", "Build it", "--status", "todo",
        "--assignee-agent-id", wire(agent), "--parent-id", wire(parent), "--project-id",
        wire(project), "--goal-id", wire(goal), key=board_key,
    )  # fmt: skip
    by_status = cli("issue", "list", "-C", wire(company), "--status", "todo", key=board_key)
    by_assignee = cli(
        "issue", "list", "-C", wire(company), "--assignee-agent-id", wire(agent), key=board_key
    )
    by_id = cli("issue", "get", issue["id"], key=board_key)
    by_identifier = cli("issue", "get", issue["identifier"], key=board_key)
    updated = cli(
        "issue", "update", issue["id"], "--status", "blocked", "--priority", "critical",
        "--assignee-agent-id", wire(helper), "--comment", "Waiting on parts", key=board_key,
    )  # fmt: skip
    commented = cli("issue", "comment", issue["id"], "--body", "Parts ordered", key=board_key)
    listed = cli("issue", "comments", issue["id"], key=board_key)
    cli("issue", "delete", wire(doomed), "--yes", key=board_key)

    made = Issue.objects.get(pk=stored(issue["id"], Issue))
    assert (made.title, made.assignee_agent_id, made.parent_id, made.project_id, made.goal_id) == (
        "Build it", helper.pk, parent.pk, project.pk, goal.pk,
    )  # fmt: skip
    assert issue["assigneeAgentId"] == wire(agent)  # as created
    assert {i["id"] for i in by_status} == {issue["id"], wire(parent)}
    assert [i["id"] for i in by_assignee] == [issue["id"]]
    assert by_id["id"] == by_identifier["id"] == issue["id"]
    assert (updated["status"], updated["priority"], updated["assigneeAgentId"]) == (
        "blocked", "critical", wire(helper),
    )  # fmt: skip
    assert commented["issueId"] == issue["id"]
    assert [c["body"] for c in listed] == ["Parts ordered", "Waiting on parts"]
    assert Comment.objects.filter(issue=made).count() == 2
    assert not Issue.objects.filter(pk=doomed.pk).exists()


def test_an_agent_checks_out_and_releases_with_its_run(cli, board, agent_key, company, agent):
    issue = factories.IssueFactory(company=company, status="todo", assignee_agent=agent)
    run = board.post(f"/api/agents/{agent.pk}/wakeup", {}, format="json").json()["id"]

    taken = cli(
        "issue", "checkout", wire(issue), "--agent-id", wire(agent), key=agent_key, run_id=run
    )
    issue.refresh_from_db()
    held = (issue.status, issue.checkout_run_id)
    released = cli("issue", "release", wire(issue), key=agent_key, run_id=run)

    assert (taken["status"], taken["checkoutRunId"]) == ("in_progress", run)
    assert held == ("in_progress", stored(run, HeartbeatRun))
    assert (released["status"], released["checkoutRunId"]) == ("todo", None)


def test_documents_are_created_updated_on_their_base_revision_read_and_listed(
    cli, board_key, company
):
    issue = factories.IssueFactory(company=company)
    key = wire(issue)

    created = cli("issue", "document:put", key, "plan", "--title", "Plan", "--body", "v1",
                  key=board_key)  # fmt: skip
    updated = cli(
        "issue", "document:put", key, "plan", "--body", "v2", "--base-revision-id",
        created["latestRevisionId"], key=board_key,
    )  # fmt: skip
    read = cli("issue", "document:get", key, "plan", key=board_key)
    listed = cli("issue", "documents", key, key=board_key)

    assert (updated["body"], updated["revisionNumber"]) == ("v2", 2)
    # A put replaces the document, its title too (sent without one: none), as in Paperclip.
    assert (created["title"], read["body"], read["title"]) == ("Plan", "v2", "")
    assert [d["key"] for d in listed] == ["plan"]
    assert Document.objects.get(issue=issue).revisions.count() == 2


def test_the_board_lists_approves_and_rejects_approvals(cli, board_key, board_user, company):
    first, second = (
        Approval.objects.create(company=company, type="approve_ceo_strategy") for _ in range(2)
    )

    pending = cli("approval", "list", "-C", wire(company), "--status", "pending", key=board_key)
    approved = cli("approval", "approve", wire(first), "--decision-note", "Go", key=board_key)
    rejected = cli("approval", "reject", wire(second), "--decision-note", "No", key=board_key)

    assert {a["id"] for a in pending} == {wire(first), wire(second)}
    assert (approved["status"], approved["decisionNote"]) == ("approved", "Go")
    assert (rejected["status"], rejected["decidedByUserId"]) == ("rejected", wire(board_user))


def test_the_activity_log_is_listed_and_filtered(cli, board, board_key, company, agent):
    issue = factories.IssueFactory(company=company, status="todo")
    board.patch(f"/api/issues/{issue.pk}", {"priority": "high"}, format="json")
    board.post(f"/api/agents/{agent.pk}/pause", format="json")

    everything = cli("activity", "list", "-C", wire(company), key=board_key)
    about_issue = cli(
        "activity", "list", "-C", wire(company), "--entity-type", "issue", "--entity-id",
        wire(issue), key=board_key,
    )  # fmt: skip

    assert [row["action"] for row in everything] == list(
        ActivityEvent.objects.filter(company=company)
        .order_by("-created_at", "-id")
        .values_list("action", flat=True)
    )
    assert [(row["action"], row["entityId"]) for row in about_issue] == [
        ("issue.updated", wire(issue))
    ]
