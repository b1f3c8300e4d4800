"""What the browser review of the board (issue 14) asked of the approval, agent, run, activity
and webhook pages: words and links where codes and raw ids were, secrets never shown, and a
fixed number of queries on the agent page."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agents.models import SECRET_MASK, Agent
from companies.models import ActivityEvent
from issues.models import Approval
from tests import factories
from tests.admin import form_data, press

SECRET = "sk-live-do-not-show-0123456789"


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def page(client, url: str, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


# --- Approvals ---


def approval_url(approval: Approval) -> str:
    return reverse("admin:issues_approval_change", args=[approval.pk])


def test_an_approval_is_titled_by_what_it_asks_and_who_asked(staff, company, agent):
    approval = Approval.objects.create(
        company=company, type="request_board_approval", requested_by_agent=agent
    )

    html = page(staff, approval_url(approval))

    assert re.search(r"<title>\s*Board approval requested by Builder \(pending\) \|", html)
    assert re.search(r">\s*Board approval requested by Builder \(pending\)\s*</a", html)
    assert "Request_board_approval" not in html


def test_the_queue_lists_a_hire_by_the_name_it_asks_for_not_by_its_id(staff, company, agent):
    hire = Approval.objects.create(
        company=company,
        type="hire_agent",
        requested_by_agent=agent,
        payload={"name": "Scout", "role": "qa"},
    )
    Approval.objects.create(company=company, type="approve_ceo_strategy", requested_by_agent=agent)

    html = page(staff, reverse("admin:issues_approval_changelist"))

    assert "Hire Scout (QA)" in html
    assert "CEO strategy from Builder" in html
    assert f"…{hire.pk[-6:]}" not in html


def test_the_payload_wraps_instead_of_widening_the_page(staff, company, agent):
    approval = Approval.objects.create(
        company=company, type="hire_agent", requested_by_agent=agent, payload={"name": "x" * 300}
    )

    html = page(staff, approval_url(approval))

    assert "white-space: pre-wrap; word-break: break-word; max-width: 100%" in html


def test_the_decision_note_is_a_box_while_pending_and_the_stored_note_once_decided(
    staff, company, agent
):
    approval = Approval.objects.create(
        company=company, type="request_board_approval", requested_by_agent=agent
    )
    pending = page(staff, approval_url(approval))
    assert pending.count("Decision note") == 1
    assert 'name="note"' in pending

    press(staff, approval_url(approval), "approve", note="Ship it")
    decided = page(staff, approval_url(approval))

    assert decided.count("Decision note") == 1
    assert 'name="note"' not in decided  # nothing left to decide
    assert "Ship it" in decided


def test_the_linked_issues_are_links_by_identifier(staff, company, agent):
    issue = factories.IssueFactory(company=company, title="Pick a vendor")
    approval = Approval.objects.create(
        company=company, type="request_board_approval", requested_by_agent=agent
    )
    approval.issues.add(issue)

    html = page(staff, approval_url(approval))

    link = f'class="underline text-primary-600 dark:text-primary-500">{issue.identifier}</a>'
    assert link in html


# --- Agents ---


def agent_url(agent: Agent) -> str:
    return reverse("admin:agents_agent_change", args=[agent.pk])


@pytest.fixture
def process_agent(company):
    return factories.AgentFactory(
        company=company,
        name="Runner",
        adapter_config={"command": "python3", "env": {"API_KEY": SECRET}},
    )


def test_roles_read_as_people_write_them():
    labels = dict(Agent.Role.choices)

    assert [labels[r] for r in ("ceo", "cto", "qa", "pm", "devops")] == [
        "CEO",
        "CTO",
        "QA",
        "PM",
        "DevOps",
    ]


def test_the_agent_list_shows_role_labels(staff, company):
    factories.AgentFactory(company=company, role="qa")

    html = page(staff, reverse("admin:agents_agent_changelist"))

    assert ">QA<" in html
    assert ">Qa<" not in html  # (a bare "Qa" may turn up in a random CSRF token)


def test_the_agent_list_fits_at_1280_px_with_the_pause_reason_in_the_status(staff, company):
    factories.AgentFactory(
        company=company,
        status=Agent.Status.PAUSED,
        pause_reason="budget",
        last_heartbeat_at=timezone.now() - timedelta(minutes=7),
    )

    response = staff.get(reverse("admin:agents_agent_changelist"))
    html = response.content.decode()

    assert len(response.context["cl"].list_display) == 9  # the tick box and eight columns
    assert "Pause reason" not in html
    assert re.search(r">\s*paused · budget\s*<", html)
    assert re.search(r">7\s+minutes ago<", html)  # the last heartbeat (its time on hover)


def test_env_values_are_never_on_the_agent_page(staff, process_agent):
    html = page(staff, agent_url(process_agent))

    assert SECRET not in html
    assert SECRET_MASK in html


def test_a_read_only_seat_sees_the_masked_config_too(client, company, process_agent):
    from django.contrib.auth.models import Permission

    viewer = factories.UserFactory(username="viewer", is_staff=True)
    factories.MembershipFactory(company=company, user=viewer)
    viewer.user_permissions.add(Permission.objects.get(codename="view_agent"))
    client.force_login(viewer)

    html = page(client, agent_url(process_agent))

    assert 'name="adapter_config"' not in html  # read-only
    assert SECRET not in html
    assert SECRET_MASK in html


def test_posting_the_masked_config_back_keeps_the_stored_env(staff, process_agent):
    url = agent_url(process_agent)
    data = form_data(staff.get(url))
    assert SECRET not in data["adapter_config"]

    untouched = staff.post(url, data)
    edited = staff.post(
        url,
        data
        | {
            "adapter_config": (
                f'{{"command": "python3", "timeoutSec": 60, "env": {{"API_KEY": "{SECRET_MASK}"}}}}'
            )
        },
    )

    assert (untouched.status_code, edited.status_code) == (302, 302)
    process_agent.refresh_from_db()
    assert process_agent.adapter_config == {
        "command": "python3",
        "timeoutSec": 60,
        "env": {"API_KEY": SECRET},
    }
    assert SECRET not in str(ActivityEvent.objects.values_list("details", flat=True))


def test_the_agent_page_puts_status_first_and_labels_the_budget(staff, agent):
    html = page(staff, agent_url(agent))

    assert html.index("Spent this month") < html.index("Adapter config")
    assert "Monthly budget (cents)" in html
    assert "Budget monthly cents" not in html


def test_the_agent_page_lists_its_runs_and_open_issues(staff, company, agent):
    issue = factories.IssueFactory(company=company, assignee_agent=agent, status="todo")
    run = factories.HeartbeatRunFactory(
        agent=agent, status="running", wake_reason="issue_assigned", issue_id=issue.pk
    )

    html = page(staff, agent_url(agent))

    assert reverse("admin:agents_heartbeatrun_change", args=[run.pk]).replace("_", "_5F") in html
    assert '<span title="issue_assigned">assigned</span>' in html  # the code on hover
    assert f">{issue.identifier}</a>" in html


def agent_page_queries(client, agent: Agent, rows: int) -> int:
    for _ in range(rows):
        issue = factories.IssueFactory(company=agent.company, assignee_agent=agent, status="todo")
        factories.HeartbeatRunFactory(
            agent=agent, status="succeeded", wake_reason="issue_assigned", issue_id=issue.pk
        )
    with CaptureQueriesContext(connection) as queries:
        assert client.get(agent_url(agent)).status_code == 200
    return len(queries)


def test_the_agent_page_is_a_fixed_number_of_queries(staff, company):
    few = agent_page_queries(staff, factories.AgentFactory(company=company), 3)
    many = agent_page_queries(staff, factories.AgentFactory(company=company), 30)

    assert few == many


# --- Runs ---


def test_a_run_is_titled_by_its_agent_and_links_its_issue_by_identifier(staff, company, agent):
    issue = factories.IssueFactory(company=company)
    run = factories.HeartbeatRunFactory(
        agent=agent,
        status="running",
        wake_reason="issue_assigned",
        issue_id=issue.pk,
        started_at=timezone.now() - timedelta(minutes=1),
    )

    html = page(staff, reverse("admin:agents_heartbeatrun_change", args=[run.pk]))

    assert re.search(r">\s*Builder&#x27;s run · Running\s*</a", html)  # the header
    text = re.sub(r'(href|value)="[^"]*"', "", html)
    assert text.index(f">{run.pk}<") > text.index("Record")  # the id only at the bottom
    issue_url = reverse("admin:issues_issue_change", args=[issue.pk])
    assert f'<a href="{issue_url}" class="underline">{issue.identifier}</a>' in html
    assert "Issue id" not in html
    assert '<span title="issue_assigned">assigned</span>' in html
    assert "issue_assigned" not in re.sub(r'title="[^"]*"', "", html)  # only on hover
    assert "Reported data" not in html  # every JSON column is empty
    # when it was queued and started: on one line, relative, the exact time on hover
    assert re.search(r'queued <span class="whitespace-nowrap" title="[^"]+">[^<]+</span>', html)
    assert re.search(
        r'started <span class="whitespace-nowrap" title="[^"]+">1\xa0minute ago<', html
    )


def test_a_run_shows_what_it_reported_and_what_it_cost(staff, agent):
    run = factories.HeartbeatRunFactory(
        agent=agent,
        status="succeeded",
        usage={"costUsd": 0.12, "inputTokens": 1000, "outputTokens": 200},
    )

    html = page(staff, reverse("admin:agents_heartbeatrun_change", args=[run.pk]))

    assert "$0.12 · 1,000 in / 200 out tokens" in html
    assert "Reported data" in html


# --- Activity and webhooks ---


def test_activity_says_actions_in_words_with_the_code_on_hover(staff, company, agent):
    ActivityEvent.objects.create(
        company=company,
        actor_type="agent",
        actor_id=agent.pk,
        action="issue.comment_added",
        entity_type="comment",
        entity_id="cmt_1",
    )
    ActivityEvent.objects.create(
        company=company,
        actor_type="system",
        actor_id="system",
        action="cost.reported",
        entity_type="cost_event",
        entity_id="cst_1",
        created_at=timezone.now() - timedelta(minutes=5),
    )

    html = page(staff, reverse("admin:companies_activityevent_changelist"))

    assert '<span title="issue.comment_added">Comment added</span>' in html
    assert '<span title="cost.reported">Cost reported</span>' in html
    assert "just now" in html
    assert "5\xa0minutes ago" in html
    assert "0\xa0minutes ago" not in html


def test_webhook_endpoints_list_their_events_in_words(staff, company):
    factories.WebhookEndpointFactory(company=company, url="https://hooks.example.com/a")
    factories.WebhookEndpointFactory(
        company=company,
        url="https://hooks.example.com/b",
        events=["issue.created", "issue.updated"],
    )

    html = page(staff, reverse("admin:agents_webhookendpoint_changelist"))

    assert "All events" in html
    assert "issue.created, issue.updated" in html
    assert "[&quot;*&quot;]" not in html
    assert re.search(r">\s*URL\s*<", html)
    assert not re.search(r">\s*Url\s*<", html)


# --- Pages titled in words, not ids ---


def test_a_comment_page_is_titled_by_its_author_and_issue(staff, company, agent):
    comment = factories.CommentFactory(issue__company=company, author_agent=agent)

    html = page(staff, reverse("admin:issues_comment_change", args=[comment.pk]))

    title = f"Comment by Builder on {comment.issue.identifier}"
    assert re.search(rf"<title>\s*{title} \|", html)
    assert re.search(rf">\s*{title}\s*</a", html)  # the header
    assert "Cmt_" not in html
    issue_url = reverse("admin:issues_issue_change", args=[comment.issue_id]).replace("_", "_5F")
    assert re.search(rf'<a href="{issue_url}" title="[^"]*" class="[^"]*underline', html)


def test_a_document_page_is_titled_by_its_issue_and_key_and_links_it(staff, company):
    document = factories.DocumentFactory(issue__company=company, key="plan")
    identifier = document.issue.identifier

    html = page(staff, reverse("admin:issues_document_change", args=[document.pk]))

    assert re.search(rf"<title>\s*{identifier} · plan \|", html)
    issue_url = reverse("admin:issues_issue_change", args=[document.issue_id]).replace("_", "_5F")
    assert re.search(rf'<a href="{issue_url}" class="[^"]*underline[^"]*">{identifier}', html)


def test_a_wake_page_is_titled_by_its_agent_and_reason_in_words(staff, agent):
    wake = factories.WakeupRequestFactory(run__agent=agent, reason="issue_assigned")

    html = page(staff, reverse("admin:agents_wakeuprequest_change", args=[wake.pk]))

    assert re.search(r"<title>\s*Wake of Builder \(assigned\) \|", html)
    assert html.count('<span title="issue_assigned">assigned</span>') == 1  # its Reason, in words


def test_a_webhook_endpoint_is_titled_by_its_url_as_written(staff, company):
    endpoint = factories.WebhookEndpointFactory(company=company, url="https://hooks.example.com/a")

    html = page(staff, reverse("admin:agents_webhookendpoint_change", args=[endpoint.pk]))

    assert re.search(r">\s*https://hooks.example.com/a\s*</a", html)  # the header's last crumb
    assert "Https://" not in html
