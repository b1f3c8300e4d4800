from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import Agent
from companies.models import ActivityEvent
from tests import factories
from tests.admin import buttons, form_data, messages_of, press


def change_url(agent: Agent) -> str:
    return reverse("admin:agents_agent_change", args=[agent.pk])


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_change_page_offers_pause_and_terminate_for_an_active_agent(staff, agent):
    response = staff.get(change_url(agent))

    assert response.status_code == 200
    assert set(buttons(response)) == {"pause", "terminate"}
    assert b'name="status"' not in response.content  # read-only: no free field


def test_pause_button_pauses_through_the_service(staff, agent, admin_user):
    response = press(staff, change_url(agent), "pause")

    assert "Pause: done." in messages_of(response)
    agent.refresh_from_db()
    assert agent.status == Agent.Status.PAUSED
    event = ActivityEvent.objects.get(action="agent.paused")
    assert (event.actor_id, event.entity_id) == (admin_user.pk, agent.pk)
    assert event.details == {"status": {"from": "active", "to": "paused"}, "pauseReason": "manual"}


def test_resume_on_an_active_agent_is_refused(staff, agent):
    response = press(staff, change_url(agent), "resume")

    assert len(messages_of(response)) == 1
    assert "resume" in messages_of(response)[0]
    agent.refresh_from_db()
    assert agent.status == Agent.Status.ACTIVE
    assert not ActivityEvent.objects.exists()


def test_terminate_button_revokes_the_agents_keys(staff, agent):
    key = factories.AgentApiKeyFactory(agent=agent)

    press(staff, change_url(agent), "terminate")

    agent.refresh_from_db()
    key.refresh_from_db()
    assert agent.status == Agent.Status.TERMINATED
    assert key.revoked_at is not None
    assert ActivityEvent.objects.filter(action="agent.terminated").count() == 1


def test_editing_an_agent_logs_what_changed(staff, agent):
    manager = factories.AgentFactory(company=agent.company, name="Boss")
    data = form_data(staff.get(change_url(agent))) | {"title": "Lead", "reports_to": manager.pk}

    response = staff.post(change_url(agent), data)

    assert response.status_code == 302
    agent.refresh_from_db()
    assert (agent.title, agent.reports_to) == ("Lead", manager)
    assert ActivityEvent.objects.get(action="agent.updated").details == {
        "changes": {
            "title": {"from": "", "to": "Lead"},
            "reportsToId": {"from": None, "to": manager.pk},
        }
    }


def test_agents_are_terminated_not_deleted(staff, agent):
    url = reverse("admin:agents_agent_delete", args=[agent.pk])

    assert staff.post(url, {"post": "yes"}).status_code == 403
    assert Agent.objects.filter(pk=agent.pk).exists()


def test_a_name_taken_in_the_company_is_a_form_error(staff, agent):
    factories.AgentFactory(company=agent.company, name="Taken")
    data = form_data(staff.get(change_url(agent))) | {"name": "taken", "company": "cmp_forged"}

    response = staff.post(change_url(agent), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "An agent with this name already exists."
    ]
    agent.refresh_from_db()
    assert agent.name == "Builder"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('{"url": "http://169.254.169.254/latest/meta-data/"}', "adapterConfig"),
        ("[1]", "adapterConfig: Must be a JSON object."),
    ],
)
def test_the_admin_cannot_store_an_adapter_config_the_api_refuses(staff, agent, config, message):
    data = form_data(staff.get(change_url(agent))) | {"adapter_config": config}

    response = staff.post(change_url(agent), data, follow=True)

    assert any(message in text for text in messages_of(response)), messages_of(response)
    agent.refresh_from_db()
    assert agent.adapter_config == {}
    assert not ActivityEvent.objects.filter(action="agent.updated").exists()


def test_the_agents_list_and_page_show_this_months_spend_against_the_budget(staff, company):
    spender = factories.AgentFactory(company=company, name="Spender", budget_monthly_cents=1000)
    factories.CostEventFactory(agent=spender, cost_cents=250)
    factories.AgentFactory(company=company, name="Frugal")

    listed = staff.get(reverse("admin:agents_agent_changelist")).content.decode()
    page = staff.get(change_url(spender)).content.decode()

    assert "$2.50 of $10.00 (25%)" in listed
    assert "$0.00 (no budget)" in listed
    assert "$2.50 of $10.00 (25%)" in page


def test_the_agents_list_shows_status_live_runs_and_open_issues(staff, company, agent):
    factories.IssueFactory(company=company, assignee_agent=agent, status="todo")
    factories.IssueFactory(company=company, assignee_agent=agent, status="done")
    factories.HeartbeatRunFactory(agent=agent, status="running")
    factories.CostEventFactory(agent=agent, cost_cents=100)  # spend joins; counts must not

    response = staff.get(reverse("admin:agents_agent_changelist"))

    [row] = response.context["cl"].result_list
    assert (row.open_issue_count, row.live_run_count) == (1, 1)
    assert "$1.00 (no budget)" in response.content.decode()


def test_pause_and_resume_from_the_list_go_through_the_services(staff, company, agent):
    peer = factories.AgentFactory(company=company, name="Peer")
    changelist = reverse("admin:agents_agent_changelist")

    staff.post(changelist, {"action": "pause_selected", "_selected_action": [agent.pk, peer.pk]})
    paused = set(Agent.objects.values_list("status", flat=True))
    staff.post(changelist, {"action": "resume_selected", "_selected_action": [agent.pk]})

    assert paused == {"paused"}
    assert dict(Agent.objects.values_list("name", "status")) == {
        agent.name: "active",
        "Peer": "paused",
    }
    assert ActivityEvent.objects.filter(action="agent.paused").count() == 2


def test_the_org_chart_nests_agents_under_whom_they_report_to(staff, company, agent):
    cto = factories.AgentFactory(company=company, name="Chief", role="cto")
    agent.reports_to = cto
    agent.save()
    other = factories.CompanyFactory(name="Elsewhere Inc")
    factories.AgentFactory(company=other, name="Stranger")

    response = staff.get(reverse("admin:agents_agent_tree"))

    assert response.status_code == 200
    [(root, reports)] = response.context["companies"][company.name]
    assert (root, [child for child, _ in reports]) == (cto, [agent])
