"""The run monitor (issue 14): the runs list opens on the live runs, each with its lease counting
down (an expired one flagged), its agent and its issue by name; cancel and force-release act
through the same services as the API (their activity rows)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agents.models import HeartbeatRun
from companies.models import ActivityEvent
from issues.models import Status
from tests import factories
from tests.admin import messages_of

pytestmark = pytest.mark.django_db

RUNS = reverse("admin:agents_heartbeatrun_changelist")


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def run(agent, status="running", expires_in=timedelta(minutes=4), **fields) -> HeartbeatRun:
    return factories.HeartbeatRunFactory(
        agent=agent,
        status=status,
        started_at=timezone.now() - timedelta(minutes=1),
        lease_expires_at=timezone.now() + expires_in,
        **fields,
    )


def shown(response) -> set[str]:
    return {row.pk for row in response.context["cl"].result_list}


def act(client, action: str, *runs: HeartbeatRun):
    return client.post(
        RUNS, {"action": action, ACTION_CHECKBOX_NAME: [r.pk for r in runs]}, follow=True
    )


def test_the_monitor_opens_on_live_runs_and_keeps_finished_ones_a_click_away(staff, agent):
    live, queued = run(agent), run(agent, status="queued")
    finished = run(agent, status="succeeded", finished_at=timezone.now())

    opened = staff.get(RUNS)
    done = staff.get(RUNS, {"state": "finished"})
    everything = staff.get(RUNS, {"state": "all"})

    assert shown(opened) == {live.pk, queued.pk}
    assert shown(done) == {finished.pk}
    assert shown(everything) == {live.pk, queued.pk, finished.pk}


def test_a_live_lease_counts_down_and_an_expired_one_is_flagged(staff, agent):
    run(agent, expires_in=timedelta(minutes=4, seconds=30))
    dead = run(agent, expires_in=-timedelta(minutes=3))

    page = staff.get(RUNS).content.decode()
    expired = staff.get(RUNS, {"state": "expired"})

    assert "m " in page and " left" in page  # e.g. "4m 29s left"
    assert "expired 3m" in page
    assert shown(expired) == {dead.pk}
    assert 'src="/static/board/countdown.js"' in page


def test_a_run_shows_its_agent_and_issue_by_name(staff, company, agent):
    issue = factories.IssueFactory(company=company)
    run(agent, issue_id=issue.pk)

    page = staff.get(RUNS).content.decode()

    assert agent.name in page
    assert f">{issue.identifier}</a>" in page
    assert reverse("admin:issues_issue_change", args=[issue.pk]) in page


def test_the_list_is_a_fixed_number_of_queries(staff, company, agent):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert staff.get(RUNS).status_code == 200
        return len(queries)

    for _ in range(3):
        run(agent, issue_id=factories.IssueFactory(company=company).pk)
    few = count()
    for _ in range(27):
        run(agent, issue_id=factories.IssueFactory(company=company).pk)

    assert count() == few


def test_cancel_from_the_monitor_cancels_through_the_service(staff, agent, admin_user):
    live = run(agent)

    act(staff, "cancel_selected", live)

    live.refresh_from_db()
    assert (live.status, live.exit_reason) == ("cancelled", "cancelled_by_board")
    logged = ActivityEvent.objects.get(action="run.cancelled")
    assert (logged.actor_id, logged.entity_id) == (admin_user.pk, live.pk)


def test_force_release_from_the_monitor_frees_the_lock_the_run_holds(staff, company, agent):
    dead = run(agent, expires_in=-timedelta(minutes=3))
    issue = factories.IssueFactory(
        company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=dead
    )

    response = act(staff, "force_release_selected", dead)

    assert messages_of(response) == [
        f"Released the lock of ACM-1 (held by Builder's run …{dead.pk[-6:]}, stale)."
    ]
    issue.refresh_from_db()
    assert issue.checkout_run_id is None
    assert ActivityEvent.objects.filter(action="issue.lock_force_released").count() == 1


def test_the_list_the_page_and_the_monitor_say_a_force_release_the_same_way(staff, company, agent):
    """One sentence (companies.admin.release_locks), whichever of the three was pressed."""
    said, expected = [], []
    for press in ("list", "page", "monitor"):
        dead = run(agent, expires_in=-timedelta(minutes=3))
        issue = factories.IssueFactory(
            company=company, status=Status.IN_PROGRESS, assignee_agent=agent, checkout_run=dead
        )
        if press == "list":
            response = staff.post(
                reverse("admin:issues_issue_changelist"),
                {"action": "force_release", ACTION_CHECKBOX_NAME: [issue.pk]},
                follow=True,
            )
        elif press == "page":
            response = staff.post(
                reverse("admin:issues_issue_force_release", args=[issue.pk]), follow=True
            )
        else:
            response = act(staff, "force_release_selected", dead)
        said.append(messages_of(response))
        held = f"held by Builder's run …{dead.pk[-6:]}, stale"
        expected.append([f"Released the lock of {issue.identifier} ({held})."])

    assert said == expected
