"""The issue page shows who holds the lock and which runs worked on it; the board can
force-release locks from the changelist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from companies.models import ActivityEvent
from issues.models import Status
from tests import factories

CHANGELIST = reverse("admin:issues_issue_changelist")


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_issue_page_shows_the_lock_holder_and_its_runs(staff, company, agent):
    run = factories.HeartbeatRunFactory(agent=agent, status="running", wake_reason="issue_assigned")
    issue = factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=run
    )
    run.issue_id = issue.pk
    run.save(update_fields=["issue_id"])

    page = staff.get(reverse("admin:issues_issue_change", args=[issue.pk])).content.decode()

    assert "Lock holder" in page
    assert reverse("admin:agents_heartbeatrun_change", args=[run.pk]) in page
    assert "running (live)" in page
    assert "issue_assigned" in page  # the runs list


def test_a_stale_lock_is_labelled_stale(staff, company, agent):
    run = factories.HeartbeatRunFactory(
        agent=agent, status="running", lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    issue = factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=run
    )

    page = staff.get(reverse("admin:issues_issue_change", args=[issue.pk])).content.decode()

    assert "stale" in page


def test_force_release_action_drops_the_locks_and_logs_each(staff, company, agent):
    run = factories.HeartbeatRunFactory(agent=agent, status="running")
    locked = factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=run
    )
    unlocked = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)

    response = staff.post(
        CHANGELIST,
        {"action": "force_release", "_selected_action": [locked.pk, unlocked.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "Released 1 lock(s)." in response.content.decode()
    locked.refresh_from_db()
    assert (locked.status, locked.checkout_run_id, locked.assignee_agent_id) == (
        Status.TODO,
        None,
        agent.pk,
    )
    row = ActivityEvent.objects.get(action="issue.lock_force_released")
    assert row.entity_id == locked.pk
    assert row.details["previousLock"]["runId"] == run.pk
