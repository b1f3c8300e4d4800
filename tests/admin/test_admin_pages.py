"""Every registered model's admin pages render for the instance admin."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.urls import reverse

from companies.models import ActivityEvent, Company, Membership
from issues.models import Issue, Status
from tests import factories

MODELS = sorted(admin.site._registry, key=lambda model: model._meta.label)


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def world(company, agent, admin_user):
    """One row of every model, so change pages have something to show."""
    run = factories.HeartbeatRunFactory(agent=agent)
    issue = factories.IssueFactory(company=company, status=Status.TODO, assignee_agent=agent)
    issue.labels.add(factories.LabelFactory(company=company))
    factories.CommentFactory(issue=issue, author_agent=agent)
    factories.ProjectFactory(company=company).goals.add(factories.GoalFactory(company=company))
    factories.TeamFactory(company=company)
    factories.AgentApiKeyFactory(agent=agent)
    factories.BoardTokenFactory(user=admin_user)
    factories.MembershipFactory(user=admin_user, company=company)
    ActivityEvent.objects.create(
        company=company,
        actor_type="agent",
        actor_id=agent.pk,
        run_id=run.pk,
        action="issue.updated",
        entity_type="issue",
        entity_id=issue.pk,
        issue_id=issue.pk,
    )


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model._meta.label)
def test_changelist_and_change_page_render(staff, world, model):
    opts = model._meta
    response = staff.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].result_count == model._default_manager.count()

    obj = model._default_manager.first()
    if obj is not None:
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        assert staff.get(url).status_code == 200


def test_autocomplete_offers_issues_to_depend_on(staff, world):
    response = staff.get(
        reverse("admin:autocomplete"),
        {"app_label": "issues", "model_name": "issue", "field_name": "dependencies", "term": "ACM"},
    )

    assert response.status_code == 200
    assert [row["text"] for row in response.json()["results"]] == [str(Issue.objects.get())]


def test_board_and_agent_secrets_are_never_editable(staff, world, agent):
    token = factories.BoardTokenFactory()
    key = factories.AgentApiKeyFactory(agent=agent)
    pages = [
        reverse("admin:companies_boardtoken_change", args=[token.pk]),
        reverse("admin:agents_agentapikey_change", args=[key.pk]),
        reverse("admin:agents_agent_change", args=[agent.pk]),
    ]
    for url in pages:
        content = staff.get(url).content.decode()
        assert token.token not in content and key.token not in content
        assert 'name="token_hash"' not in content and 'name="webhook_secret"' not in content
    assert staff.get(reverse("admin:companies_boardtoken_add")).status_code == 403
    assert staff.get(reverse("admin:agents_agentapikey_add")).status_code == 403


def test_adding_a_company_allocates_a_prefix_and_seats_its_creator(staff, admin_user):
    url = reverse("admin:companies_company_add")

    response = staff.post(url, {"name": "Initech", "description": "", "budget_monthly_cents": 0})

    assert response.status_code == 302
    company = Company.objects.get(name="Initech")
    assert company.issue_prefix == "INI"
    assert Membership.objects.get(company=company).user == admin_user
    assert ActivityEvent.objects.get(company=company).action == "company.created"


@pytest.mark.parametrize(
    "model",
    [model for model in MODELS if "company" in admin.site._registry[model].list_filter],
    ids=lambda model: model._meta.label,
)
def test_a_company_filter_names_only_the_staff_members_companies(client, company, model):
    """Another company's name is never shown, not even as a filter choice."""
    factories.CompanyFactory(name="Elsewhere Incorporated")
    member = factories.UserFactory(is_staff=True)
    factories.MembershipFactory(user=member, company=company)
    opts = model._meta
    member.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label=opts.app_label, codename=f"view_{opts.model_name}"
        )
    )
    client.force_login(member)

    response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))

    assert response.status_code == 200
    assert "Elsewhere Incorporated" not in response.content.decode()


def test_a_company_page_links_each_seat_and_adds_one_by_a_searched_user(staff, company):
    seated = factories.MembershipFactory(company=company, user__username="ada")
    newcomer = factories.UserFactory(username="grace")
    url = reverse("admin:companies_company_change", args=[company.pk])

    page = staff.get(url)

    seats, new_seats = page.context["inline_admin_formsets"]
    html = page.content.decode()
    user_url = reverse("admin:companies_user_change", args=[quote(seated.user_id)])
    assert f'href="{user_url}"' in html  # the seated user, read-only, as a link
    assert [form.instance for form in seats.formset.forms] == [seated]
    assert new_seats.formset.forms == []  # the search is in the "add" row only
    assert "admin-autocomplete" in str(new_seats.formset.empty_form["user"])

    initial = page.context["adminform"].form.initial
    data = {key: initial[key] for key in ("name", "description", "status", "budget_monthly_cents")}
    for formset in (seats.formset, new_seats.formset):
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
    data[f"{seats.formset.prefix}-0-id"] = seated.pk
    data[f"{seats.formset.prefix}-0-role"] = seated.role
    data[f"{seats.formset.prefix}-0-company"] = company.pk
    prefix = new_seats.formset.prefix
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": 1,
            f"{prefix}-0-user": newcomer.pk,
            f"{prefix}-0-company": company.pk,
            f"{prefix}-0-role": Membership.Role.VIEWER,
        }
    )

    response = staff.post(url, data)

    assert response.status_code == 302
    assert Membership.objects.get(company=company, user=newcomer).role == Membership.Role.VIEWER
    assert Membership.objects.filter(company=company).count() == 2
