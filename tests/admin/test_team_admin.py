"""Teams in the admin save and delete through the team services: each change one activity row,
an unchanged save none, and a read-only seat is refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from agents.models import Team
from companies.models import ActivityEvent, Membership
from tests import factories
from tests.admin import form_data, messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, admin_user):
    client.force_login(admin_user)
    return client


def test_adding_a_team_logs_team_created(staff, company, admin_user):
    response = staff.post(
        reverse("admin:agents_team_add"),
        {"company": company.pk, "name": "Platform", "description": "Infra"},
        follow=True,
    )

    assert response.status_code == 200
    team = Team.objects.get()
    assert (team.name, team.company_id) == ("Platform", company.pk)
    event = ActivityEvent.objects.get()
    assert (event.action, event.entity_id, event.actor_id) == (
        "team.created",
        team.pk,
        admin_user.pk,
    )


def test_renaming_logs_the_change_and_an_unchanged_save_logs_nothing(staff, company):
    team = Team.objects.create(company=company, name="Platform")
    url = reverse("admin:agents_team_change", args=[team.pk])

    unchanged = staff.post(url, form_data(staff.get(url)), follow=True)
    renamed = staff.post(url, {**form_data(staff.get(url)), "name": "Core"}, follow=True)

    assert (unchanged.status_code, renamed.status_code) == (200, 200)
    team.refresh_from_db()
    assert team.name == "Core"
    [event] = ActivityEvent.objects.all()
    assert (event.action, event.details) == (
        "team.updated",
        {"changes": {"name": {"from": "Platform", "to": "Core"}}},
    )


def test_deleting_a_team_logs_team_deleted(staff, company):
    team = Team.objects.create(company=company, name="Platform")

    response = staff.post(
        reverse("admin:agents_team_delete", args=[team.pk]), {"post": "yes"}, follow=True
    )

    assert response.status_code == 200
    assert not Team.objects.exists()
    assert ActivityEvent.objects.get().action == "team.deleted"


def test_a_read_only_seat_cannot_rename_a_team(client, company):
    viewer = factories.UserFactory(is_staff=True)
    factories.MembershipFactory(user=viewer, company=company, role=Membership.Role.VIEWER)
    viewer.user_permissions.add(*Permission.objects.filter(codename__endswith="_team"))
    client.force_login(viewer)
    team = Team.objects.create(company=company, name="Platform")
    url = reverse("admin:agents_team_change", args=[team.pk])

    response = client.post(url, {**form_data(client.get(url)), "name": "Core"}, follow=True)

    assert messages_of(response) == ["Your membership in this company is read-only"]
    team.refresh_from_db()
    assert team.name == "Platform"
    assert not ActivityEvent.objects.exists()
