"""A change page opened from its changelist (whose link quotes the pk: `iss_01…` is
`iss_5F01…` in the URL) shows its transition buttons, and pressing one there works."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import Agent
from companies.models import ActivityEvent
from issues.models import Approval, Status
from paperclip.ids import as_uuid
from tests import factories
from tests.admin import buttons, change_link, messages_of, press


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def open_from_changelist(client, model, label: str) -> str:
    opts = model._meta
    changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    url = change_link(changelist, label)
    assert "_5F" in url  # the quoted pk: what this test is about
    return url


def test_issue_opened_from_the_changelist_shows_and_runs_its_transition_buttons(staff, company):
    issue = factories.IssueFactory(company=company)  # backlog, unassigned
    url = open_from_changelist(staff, type(issue), issue.identifier)

    assert set(buttons(staff.get(url))) == {"to_todo", "block", "cancel"}

    response = press(staff, url, "to_todo")

    assert "Move to todo: done." in messages_of(response)
    issue.refresh_from_db()
    assert (issue.status, issue.version) == (Status.TODO, 2)
    assert ActivityEvent.objects.get().action == "issue.updated"


def test_approval_opened_from_the_changelist_shows_and_runs_its_decisions(staff, company, agent):
    approval = Approval.objects.create(
        company=company, type="hire_agent", requested_by_agent=agent, payload={"name": "Scout"}
    )
    url = open_from_changelist(staff, Approval, "Hire Scout")

    assert buttons(staff.get(url)) == ["approve", "reject", "request_revision"]

    response = press(staff, url, "reject", note="Not now")

    assert "Reject: done." in messages_of(response)
    approval.refresh_from_db()
    assert (approval.status, approval.decision_note) == ("rejected", "Not now")


def test_agent_opened_from_the_changelist_shows_and_runs_pause_and_terminate(staff, agent):
    url = open_from_changelist(staff, Agent, agent.name)

    assert set(buttons(staff.get(url))) == {"pause", "terminate"}

    response = press(staff, url, "pause")

    assert "Pause: done." in messages_of(response)
    agent.refresh_from_db()
    assert agent.status == Agent.Status.PAUSED


def test_a_change_page_opens_with_the_issue_id_in_uuid_form(staff, company):
    issue = factories.IssueFactory(company=company, title="Found by UUID")

    response = staff.get(reverse("admin:issues_issue_change", args=[as_uuid(issue.pk)]))

    assert response.status_code == 200
    assert response.context["original"].pk == issue.pk
