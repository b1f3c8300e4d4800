"""What an agent may do to its company's issues (DESIGN §4), through the HTTP API.

Agents change issues that are unassigned, their own, or their reports' (any depth). Another
agent's checked-out issue is a 409; any other foreign issue a 403. Every agent of the company
reads and comments on every issue. Board-only actions answer 403 to any agent.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from agents.models import Agent, AgentApiKey, HeartbeatRun
from companies.models import ActivityEvent, Company, Membership
from issues.models import Comment, Issue, Status
from tests import factories
from tests.conftest import client_for
from tests.wire import wire

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def db_state() -> dict[str, list[dict]]:
    """Every row an agent's request could touch (a key's last use is bookkeeping)."""
    state = {
        model.__name__: list(model.objects.order_by("pk").values())
        for model in (Company, Membership, Agent, Issue, Comment, ActivityEvent)
    }
    state["AgentApiKey"] = list(
        AgentApiKey.objects.order_by("pk").values("id", "agent_id", "token_hash", "revoked_at")
    )
    state["HeartbeatRun"] = list(HeartbeatRun.objects.order_by("pk").values("id", "status"))
    return state


def call(client, method: str, url: str, data: dict | None = None):
    return getattr(client, method)(url, data, format="json")


# -- the org chart: boss ← agent (Builder, the caller) ← report ← grand_report; peer aside ------


@pytest.fixture
def boss(company, agent):
    boss = factories.AgentFactory(company=company, name="Boss", role=Agent.Role.CTO)
    agent.reports_to = boss
    agent.save()
    return boss


@pytest.fixture
def report(company, agent):
    return factories.AgentFactory(company=company, name="Helper", reports_to=agent)


@pytest.fixture
def grand_report(company, report):
    return factories.AgentFactory(company=company, name="Intern", reports_to=report)


@pytest.fixture
def peer(company):
    return factories.AgentFactory(company=company, name="Rival")


@pytest.fixture
def run(agent):
    """The caller's live run: agents send it with every state change (DESIGN §3)."""
    return factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )


@pytest.fixture
def builder(agent, run):
    """The calling agent's client, working inside its run."""
    return client_for(factories.AgentApiKeyFactory(agent=agent).token, run_id=run.pk)


def issue_of(company, assignee=None, status=Status.TODO, **kwargs) -> Issue:
    if isinstance(assignee, Agent):
        kwargs["assignee_agent"] = assignee
    elif assignee is not None:
        kwargs["assignee_user"] = assignee
    return factories.IssueFactory(company=company, title="Original", status=status, **kwargs)


@pytest.fixture
def peers_checked_out_issue(company, peer):
    peer_run = factories.HeartbeatRunFactory(
        agent=peer, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    now = timezone.now()
    return issue_of(
        company,
        peer,
        Status.IN_PROGRESS,
        checkout_run=peer_run,
        started_at=now,
        execution_locked_at=now,
    )


# -- what an agent may change -------------------------------------------------------------------


def assert_patched_by(response, issue: Issue, agent: Agent, run: HeartbeatRun) -> None:
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "Changed by Builder"
    issue.refresh_from_db()
    assert issue.title == "Changed by Builder"
    row = ActivityEvent.objects.get(action="issue.updated", entity_id=issue.pk)
    assert (row.actor_type, row.actor_id, row.run_id) == ("agent", agent.pk, run.pk)
    assert row.details["changes"]["title"] == {"from": "Original", "to": "Changed by Builder"}


def test_agent_may_change_an_unassigned_issue(builder, agent, run, company):
    issue = issue_of(company, status=Status.BACKLOG)

    response = builder.patch(
        f"/api/issues/{issue.pk}", {"title": "Changed by Builder"}, format="json"
    )

    assert_patched_by(response, issue, agent, run)


def test_agent_may_take_an_unassigned_issue(builder, agent, company):
    issue = issue_of(company, status=Status.BACKLOG)

    response = builder.patch(
        f"/api/issues/{issue.identifier}", {"assigneeAgentId": agent.pk}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["assigneeAgentId"] == wire(agent)
    issue.refresh_from_db()
    assert issue.assignee_agent_id == agent.pk


def test_agent_may_change_its_own_issue(builder, agent, run, company):
    issue = issue_of(company, agent)

    response = builder.patch(
        f"/api/issues/{issue.pk}", {"title": "Changed by Builder"}, format="json"
    )

    assert_patched_by(response, issue, agent, run)


def test_agent_may_block_its_own_issue(builder, agent, company):
    issue = issue_of(company, agent)

    response = builder.patch(f"/api/issues/{issue.pk}", {"status": "blocked"}, format="json")

    assert (response.status_code, response.json()["status"]) == (200, "blocked")
    issue.refresh_from_db()
    assert issue.status == "blocked"


@pytest.mark.parametrize("assignee", ["report", "grand_report"])
def test_agent_may_change_an_issue_of_an_agent_who_reports_to_it(
    request, builder, agent, run, company, assignee
):
    issue = issue_of(company, request.getfixturevalue(assignee))

    response = builder.patch(
        f"/api/issues/{issue.pk}", {"title": "Changed by Builder"}, format="json"
    )

    assert_patched_by(response, issue, agent, run)


def test_manager_may_reassign_its_reports_issue_to_another_report(
    builder, company, report, grand_report
):
    issue = issue_of(company, report)

    response = builder.patch(
        f"/api/issues/{issue.pk}", {"assigneeAgentId": grand_report.pk}, format="json"
    )

    assert response.status_code == 200, response.content
    issue.refresh_from_db()
    assert issue.assignee_agent_id == grand_report.pk


# -- what an agent may not change ----------------------------------------------------------------


def test_changing_another_agents_checked_out_issue_is_a_409(builder, peers_checked_out_issue, peer):
    issue = peers_checked_out_issue
    before = db_state()

    response = builder.patch(
        f"/api/issues/{issue.pk}", {"title": "Changed by Builder"}, format="json"
    )

    assert response.status_code == 409, response.content
    body = response.json()
    assert body["error"] == "Issue is checked out by another agent"
    assert isinstance(body["code"], str)
    assert db_state() == before
    issue.refresh_from_db()
    assert (issue.title, issue.status, issue.assignee_agent_id) == (
        "Original",
        "in_progress",
        peer.pk,
    )


@pytest.mark.parametrize(
    "data",
    [
        {"title": "Changed by Builder"},
        {"assigneeAgentId": "__caller__"},
        {"status": "blocked"},
        {"priority": "critical"},
    ],
    ids=["title", "take-it", "status", "priority"],
)
@pytest.mark.parametrize("assignee", ["peer", "boss", "board_user"])
def test_changing_an_issue_assigned_to_someone_else_is_a_403(
    request, builder, agent, company, assignee, data
):
    issue = issue_of(company, request.getfixturevalue(assignee))
    data = {k: agent.pk if v == "__caller__" else v for k, v in data.items()}
    before = db_state()

    response = builder.patch(f"/api/issues/{issue.pk}", data, format="json")

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "forbidden"
    assert db_state() == before


def test_a_report_may_not_change_its_managers_issue(company, agent, report):
    issue = issue_of(company, agent)
    report_run = factories.HeartbeatRunFactory(
        agent=report, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    helper = client_for(factories.AgentApiKeyFactory(agent=report).token, run_id=report_run.pk)

    response = helper.patch(f"/api/issues/{issue.pk}", {"title": "Mutiny"}, format="json")

    assert response.status_code == 403, response.content
    issue.refresh_from_db()
    assert issue.title == "Original"


# -- any agent reads and comments ---------------------------------------------------------------


@pytest.fixture(params=["peer", "boss", "board_user", "checked_out"])
def foreign_issue(request, company):
    if request.param == "checked_out":
        return request.getfixturevalue("peers_checked_out_issue")
    return issue_of(company, request.getfixturevalue(request.param))


def test_any_agent_of_the_company_may_read_any_issue(builder, foreign_issue):
    detail = builder.get(f"/api/issues/{foreign_issue.pk}")
    comments = builder.get(f"/api/issues/{foreign_issue.pk}/comments")
    activity = builder.get(f"/api/issues/{foreign_issue.pk}/activity")

    assert (detail.status_code, detail.json()["id"]) == (200, wire(foreign_issue))
    assert (comments.status_code, comments.json()) == (200, [])
    assert activity.status_code == 200


def test_any_agent_of_the_company_may_comment_on_any_issue(builder, agent, run, foreign_issue):
    response = builder.post(
        f"/api/issues/{foreign_issue.pk}/comments", {"body": "Can I help?"}, format="json"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["issueId"], body["authorAgentId"], body["body"]) == (
        wire(foreign_issue),
        wire(agent),
        "Can I help?",
    )
    comment = Comment.objects.get()
    assert (comment.issue_id, comment.author_agent_id, comment.run_id) == (
        foreign_issue.pk,
        agent.pk,
        run.pk,
    )
    foreign_issue.refresh_from_db()
    assert foreign_issue.title == "Original"


def test_any_agent_may_comment_on_a_finished_issue(builder, agent, company, peer):
    issue = issue_of(company, peer, Status.DONE, completed_at=timezone.now())

    response = builder.post(f"/api/issues/{issue.pk}/comments", {"body": "Nice"}, format="json")

    assert response.status_code == 201, response.content
    issue.refresh_from_db()
    assert issue.status == "done"
    assert Comment.objects.get().author_agent_id == agent.pk


# -- board-only actions -------------------------------------------------------------------------


@pytest.fixture
def own_issue(company, agent):
    return issue_of(company, agent)


@pytest.fixture
def own_done_issue(company, agent):
    return issue_of(company, agent, Status.DONE, completed_at=timezone.now())


BOARD_ONLY = [
    ("delete-issue", "delete", "/api/issues/{own_issue}", None),
    ("reopen", "post", "/api/issues/{own_done_issue}/reopen", None),
    ("patch-reopen", "patch", "/api/issues/{own_done_issue}", {"reopen": True}),
    (
        "comment-reopen",
        "post",
        "/api/issues/{own_done_issue}/comments",
        {"body": "Again!", "reopen": True},
    ),
    ("create-agent", "post", "/api/companies/{company}/agents", {"name": "Clone"}),
    ("patch-agent-title", "patch", "/api/agents/{target}", {"title": "Chief Everything"}),
    ("patch-agent-reports-to", "patch", "/api/agents/{target}", {"reportsTo": None}),
    ("create-key", "post", "/api/agents/{target}/keys", {"name": "spare"}),
    ("pause", "post", "/api/agents/{target}/pause", None),
    ("resume", "post", "/api/agents/{target}/resume", None),
    ("terminate", "post", "/api/agents/{target}/terminate", None),
]
# Actions on an agent are tried on the caller itself and on one of its reports.
BOARD_ONLY_CASES = [
    pytest.param(method, path, data, target, id=f"{name}-{target}" if "{target}" in path else name)
    for name, method, path, data in BOARD_ONLY
    for target in (("agent", "report") if "{target}" in path else ("agent",))
]


@pytest.mark.parametrize(("method", "path", "data", "target"), BOARD_ONLY_CASES)
def test_board_only_actions_are_refused_to_agents(
    request, builder, company, own_issue, own_done_issue, method, path, data, target
):
    target_agent = request.getfixturevalue(target)
    url = path.format(
        own_issue=own_issue.pk,
        own_done_issue=own_done_issue.pk,
        company=company.pk,
        target=target_agent.pk,
    )
    before = db_state()

    response = call(builder, method, url, data)

    assert response.status_code == 403, response.content
    assert response.json()["code"] == "forbidden"
    assert db_state() == before
