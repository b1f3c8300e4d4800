from __future__ import annotations

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.urls import reverse

from companies.models import ActivityEvent, Company
from tests import factories

CHANGELIST = reverse("admin:companies_activityevent_changelist")


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def log(company: Company, actor: str, action: str, entity: str) -> ActivityEvent:
    return ActivityEvent.objects.create(
        company=company,
        actor_type=actor.split("_")[0],
        actor_id=actor,
        action=action,
        entity_type=action.split(".")[0],
        entity_id=entity,
        issue_id=entity if entity.startswith("iss_") else None,
    )


def test_changelist_filters_and_searches(staff, company):
    wanted = log(company, "user_1", "issue.updated", "iss_1")
    log(company, "agent_2", "agent.paused", "agt_2")
    log(company, "user_1", "issue.updated", "iss_3")

    response = staff.get(
        CHANGELIST,
        {"action": "issue.updated", "entity_type": "issue", "actor_type": "user", "q": "iss_1"},
    )

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [wanted]


def test_the_log_cannot_be_added_to_changed_or_deleted(staff, company):
    event = log(company, "user_1", "issue.updated", "iss_1")
    change = reverse("admin:companies_activityevent_change", args=[event.pk])
    delete = reverse("admin:companies_activityevent_delete", args=[event.pk])

    assert staff.get(reverse("admin:companies_activityevent_add")).status_code == 403
    response = staff.get(change)
    assert response.status_code == 200  # viewable, with no field to edit and no delete link
    assert b'name="action"' not in response.content
    assert b"deletelink" not in response.content
    assert staff.post(change, {"action": "forged"}).status_code == 403
    assert staff.post(delete, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "issue.updated"


def test_staff_sees_only_their_companies_activity(client, board_user, company, other_company):
    board_user.user_permissions.add(Permission.objects.get(codename="view_activityevent"))
    client.force_login(board_user)
    ours = log(company, "user_1", "issue.created", "iss_1")
    log(other_company, "user_2", "issue.created", "iss_2")

    response = client.get(CHANGELIST)

    assert list(response.context["cl"].result_list) == [ours]


def test_the_log_names_who_did_what_to_which_issue(board, staff, company, agent):
    """Names, identifiers and links where raw ids used to show."""
    issue = factories.IssueFactory(company=company, title="Ship it")
    board.patch(f"/api/issues/{issue.pk}", {"title": "Ship it now"}, format="json")
    board.post(f"/api/issues/{issue.pk}/comments", {"body": "On it"}, format="json")
    board.post(f"/api/agents/{agent.pk}/pause", {}, format="json")

    page = staff.get(CHANGELIST).content.decode()

    issue_page = reverse("admin:issues_issue_change", args=[quote(issue.pk)])
    assert f'<a href="{issue_page}">{issue.identifier}</a>' in page  # the issue, by identifier
    assert f'comment on <a href="{issue_page}">{issue.identifier}</a>' in page
    assert reverse("admin:agents_agent_change", args=[quote(agent.pk)]) in page
    assert "alice" in page  # the board user, by name
    assert issue.pk not in page.replace(issue_page, "")  # no raw id shown
