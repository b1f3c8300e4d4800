"""One run check for every agent write (DESIGN §3).

Whenever a run id comes with an agent's write (the `X-Paperclip-Run-Id` header or a run token),
it must be the caller's own, live run. A finished, cancelled, timed-out or expired run answers
422 `run_not_live` on every write, not only on checkout, and nothing is written. A run token
stops authenticating once its run is finished; the agent's API key still works.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from agents.models import HeartbeatRun
from agents.runs import mint_run_token
from companies.models import ActivityEvent
from issues.models import Approval, Attachment, Comment, Document, Issue
from tests import factories
from tests.conftest import client_for
from tests.wire import wire

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(agent):
    return factories.AgentApiKeyFactory(agent=agent).token


@pytest.fixture
def todo(company, agent):
    return factories.IssueFactory(company=company, status="todo", assignee_agent=agent)


def finished_run(agent, status: str) -> HeartbeatRun:
    return factories.HeartbeatRunFactory(agent=agent, status=status, finished_at=timezone.now())


def expired_run(agent) -> HeartbeatRun:
    return factories.HeartbeatRunFactory(
        agent=agent,
        status=HeartbeatRun.Status.RUNNING,
        started_at=timezone.now() - timedelta(minutes=10),
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )


def write(client, name: str, company, issue):
    """Each agent write a run id may come with, as the agent's client sends it."""
    if name == "comment":
        return client.post(f"/api/issues/{issue.pk}/comments", {"body": "hi"}, format="json")
    if name == "create":
        return client.post(
            f"/api/companies/{company.pk}/issues", {"title": "Follow-up"}, format="json"
        )
    if name == "patch":
        return client.patch(f"/api/issues/{issue.pk}", {"title": "Renamed"}, format="json")
    if name == "document":
        return client.put(
            f"/api/issues/{issue.pk}/documents/plan",
            {"title": "Plan", "body": "# Plan"},
            format="json",
        )
    if name == "attachment":
        upload = SimpleUploadedFile("notes.txt", b"notes", content_type="text/plain")
        return client.post(
            f"/api/companies/{company.pk}/issues/{issue.pk}/attachments",
            {"file": upload},
            format="multipart",
        )
    if name == "approval":
        return client.post(
            f"/api/companies/{company.pk}/approvals",
            {"type": "approve_ceo_strategy", "payload": {"plan": "x"}},
            format="json",
        )
    raise AssertionError(name)


WRITES = ["comment", "create", "patch", "document", "attachment", "approval"]


def nothing_written(issue: Issue, title: str) -> bool:
    issue.refresh_from_db()
    return (
        issue.title == title
        and Issue.objects.count() == 1
        and not Comment.objects.exists()
        and not Document.objects.exists()
        and not Attachment.objects.exists()
        and not Approval.objects.exists()
        and not ActivityEvent.objects.exists()
    )


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled", "timed_out"])
@pytest.mark.parametrize("name", WRITES)
def test_a_write_from_a_finished_run_is_422_and_writes_nothing(
    key, agent, company, todo, name, status
):
    run = finished_run(agent, status)

    response = write(client_for(key, run_id=run.pk), name, company, todo)

    assert response.status_code == 422, response.content
    body = response.json()
    assert (body["code"], body["details"]["runId"], body["details"]["status"]) == (
        "run_not_live",
        wire(run),
        status,
    )
    assert nothing_written(todo, todo.title)


@pytest.mark.parametrize("name", WRITES)
def test_a_write_from_a_run_whose_lease_expired_is_422(key, agent, company, todo, name):
    run = expired_run(agent)

    response = write(client_for(key, run_id=run.pk), name, company, todo)

    assert response.status_code == 422, response.content
    assert response.json()["code"] == "run_not_live"
    assert nothing_written(todo, todo.title)


@pytest.mark.parametrize("name", WRITES)
def test_the_same_write_from_a_live_run_succeeds_and_records_the_run(
    key, agent, company, todo, name
):
    """The control: the 422s above come from the run, not from broken requests."""
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )

    response = write(client_for(key, run_id=run.pk), name, company, todo)

    assert response.status_code in (200, 201), response.content
    assert ActivityEvent.objects.filter(run_id=run.pk).exists()


def test_a_run_token_stops_authenticating_once_its_run_is_finished(agent, company, todo):
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    token = mint_run_token(run)
    client = client_for(token)
    assert client.get(f"/api/issues/{todo.pk}").status_code == 200

    finished = client.post(f"/api/heartbeat-runs/{run.pk}/finish", {"status": "succeeded"})
    after = client.get(f"/api/issues/{todo.pk}")

    assert finished.status_code == 200, finished.content
    assert after.status_code == 401
    assert after.json() == {"error": "Unauthorized", "code": "unauthorized"}


def test_finishing_again_with_the_same_status_is_200_and_changes_nothing(key, agent):
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    client = client_for(key, run_id=run.pk)
    first = client.post(f"/api/heartbeat-runs/{run.pk}/finish", {"status": "failed"})

    again = client.post(f"/api/heartbeat-runs/{run.pk}/finish", {"status": "failed"})

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["status"] == "failed"
    assert again.json()["finishedAt"] == first.json()["finishedAt"]
    assert ActivityEvent.objects.filter(action="run.finished").count() == 1


def test_finishing_a_run_the_board_cancelled_is_409_naming_its_status(board, key, agent):
    run = factories.HeartbeatRunFactory(
        agent=agent, status=HeartbeatRun.Status.RUNNING, started_at=timezone.now()
    )
    assert board.post(f"/api/heartbeat-runs/{run.pk}/cancel").status_code == 200

    response = client_for(key, run_id=run.pk).post(
        f"/api/heartbeat-runs/{run.pk}/finish", {"status": "succeeded"}
    )

    assert response.status_code == 409
    assert response.json() == {
        "error": "Run is already cancelled",
        "code": "run_finished",
        "details": {"runId": wire(run), "status": "cancelled"},
    }
    run.refresh_from_db()
    assert (run.status, run.exit_reason) == ("cancelled", "cancelled_by_board")
