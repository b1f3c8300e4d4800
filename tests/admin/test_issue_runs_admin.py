"""The issue page shows who holds the lock and which runs worked on it; the board can
force-release locks from the changelist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from companies.models import ActivityEvent, Membership
from issues.models import Status
from tests import factories
from tests.admin import form_data, messages_of

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
    # Linked as the admin links rows (the quoted pk), named by its agent, not by its id.
    assert reverse("admin:agents_heartbeatrun_change", args=[quote(run.pk)]) in page
    assert "Builder's run</a>" in page
    assert "running (live)" in page
    # the run's entry in the thread, its reason in words (the code on hover)
    assert 'woken by <span title="issue_assigned">assigned</span>' in page


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
    assert messages_of(response) == [
        f"Released the lock of ACM-1 (held by Builder's run …{run.pk[-6:]}, live)."
    ]
    locked.refresh_from_db()
    assert (locked.status, locked.checkout_run_id, locked.assignee_agent_id) == (
        Status.TODO,
        None,
        agent.pk,
    )
    row = ActivityEvent.objects.get(action="issue.lock_force_released")
    assert row.entity_id == locked.pk
    assert row.details["previousLock"]["runId"] == run.pk


def test_reassigning_an_issue_a_live_run_holds_is_refused_naming_the_holder(staff, company, agent):
    run = factories.HeartbeatRunFactory(agent=agent, status="running")
    issue = factories.IssueFactory(
        company=company,
        title="Old",
        status=Status.IN_PROGRESS,
        assignee_agent=agent,
        checkout_run=run,
    )
    other = factories.AgentFactory(company=company, name="Other")
    url = reverse("admin:issues_issue_change", args=[issue.pk])

    data = form_data(staff.get(url)) | {"assignee_agent": other.pk, "title": "Renamed"}
    response = staff.post(url, data, follow=True)

    assert response.status_code == 200
    assert messages_of(response) == [
        "Issue is checked out by a live run; force-release it (or reassign) first"
        f" (run {run.pk}, agent {agent.pk})"
    ]
    issue.refresh_from_db()
    assert (issue.assignee_agent, issue.checkout_run, issue.title, issue.version) == (
        agent,
        run,
        "Old",
        1,
    )
    assert not ActivityEvent.objects.exists()


def test_after_a_force_release_the_issue_can_be_reassigned(staff, company, agent):
    run = factories.HeartbeatRunFactory(agent=agent, status="running")
    issue = factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=run
    )
    other = factories.AgentFactory(company=company, name="Other")
    staff.post(CHANGELIST, {"action": "force_release", "_selected_action": [issue.pk]})
    url = reverse("admin:issues_issue_change", args=[issue.pk])

    response = staff.post(url, form_data(staff.get(url)) | {"assignee_agent": other.pk})

    assert response.status_code == 302
    issue.refresh_from_db()
    assert (issue.status, issue.assignee_agent, issue.checkout_run) == (Status.TODO, other, None)


def test_a_read_only_seat_cannot_force_release(client, company, agent):
    viewer = factories.MembershipFactory(company=company, role=Membership.Role.VIEWER).user
    viewer.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_issue", "change_issue"])
    )
    client.force_login(viewer)
    run = factories.HeartbeatRunFactory(agent=agent, status="running")
    issue = factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=run
    )

    response = client.post(
        CHANGELIST, {"action": "force_release", "_selected_action": [issue.pk]}, follow=True
    )

    assert response.status_code == 200
    assert messages_of(response) == [
        "Could not release the lock of ACM-1: Your membership in this company is read-only"
    ]
    issue.refresh_from_db()
    assert (issue.status, issue.checkout_run) == (Status.IN_PROGRESS, run)
    assert not ActivityEvent.objects.exists()


def test_a_process_runs_page_shows_the_end_of_its_output_and_links_the_whole_log(staff, agent):
    run = factories.HeartbeatRunFactory(
        agent=agent, status="failed", exit_code=1, log_tail="step 1\n<boom>\n"
    )

    page = staff.get(reverse("admin:agents_heartbeatrun_change", args=[run.pk])).content.decode()

    assert "step 1\n&lt;boom&gt;\n" in page  # as written, escaped
    assert f'href="/api/heartbeat-runs/{run.pk}/log"' in page
