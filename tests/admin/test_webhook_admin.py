"""Webhook endpoints in the admin (DESIGN §9): every save, delete and action goes through the
webhook services (one activity row each), a refused URL is a form error, the signing secret is
shown once (after creation or rotation) and never on the change page, and the delivery log is
read-only but for "Redeliver"."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import quote
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from agents.models import WebhookDelivery, WebhookEndpoint
from companies.models import ActivityEvent
from tests import factories
from tests.admin import form_data, messages_of

pytestmark = pytest.mark.django_db

ENDPOINTS = reverse("admin:agents_webhookendpoint_changelist")
ADD = reverse("admin:agents_webhookendpoint_add")
DELIVERIES = reverse("admin:agents_webhookdelivery_changelist")


def change_url(endpoint: WebhookEndpoint) -> str:
    return reverse("admin:agents_webhookendpoint_change", args=[quote(endpoint.pk)])


def grant_webhook_permissions(user) -> None:
    """What a board seat is given in the admin: the endpoints and a view of their log."""
    user.user_permissions.add(
        *Permission.objects.filter(codename__endswith="_webhookendpoint"),
        Permission.objects.get(codename="view_webhookdelivery"),
    )


@pytest.fixture
def staff(client, board_user):
    grant_webhook_permissions(board_user)
    client.force_login(board_user)
    return client


@pytest.fixture
def endpoint(company):
    return factories.WebhookEndpointFactory(company=company, url="https://hooks.example.com/a")


def act(client, changelist: str, action: str, *rows):
    return client.post(
        changelist, {"action": action, ACTION_CHECKBOX_NAME: [row.pk for row in rows]}, follow=True
    )


def activity(action: str) -> list[ActivityEvent]:
    return list(ActivityEvent.objects.filter(action=action))


def test_the_changelists_and_the_change_page_show_the_endpoint_and_its_log(staff, endpoint):
    delivery = factories.WebhookDeliveryFactory(
        endpoint=endpoint, status=WebhookDelivery.Status.FAILED, response_status=502
    )

    endpoints = staff.get(ENDPOINTS)
    page = staff.get(change_url(endpoint))
    log = staff.get(DELIVERIES)

    assert (endpoints.status_code, page.status_code, log.status_code) == (200, 200, 200)
    assert list(endpoints.context["cl"].result_list) == [endpoint]
    [inline] = page.context["inline_admin_formsets"]
    assert [form.instance for form in inline.formset.forms] == [delivery]
    assert list(log.context["cl"].result_list) == [delivery]


def test_the_endpoints_log_link_lists_only_its_deliveries(staff, endpoint, company):
    ours = factories.WebhookDeliveryFactory(endpoint=endpoint)
    factories.WebhookDeliveryFactory(endpoint=factories.WebhookEndpointFactory(company=company))

    response = staff.get(DELIVERIES, {"endpoint__id__exact": endpoint.pk})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [ours]


def test_the_change_page_shows_the_newest_deliveries_first(staff, endpoint):
    older = factories.WebhookDeliveryFactory(endpoint=endpoint)
    newer = factories.WebhookDeliveryFactory(endpoint=endpoint, event_type="issue.done")

    page = staff.get(change_url(endpoint))

    [inline] = page.context["inline_admin_formsets"]
    assert [form.instance for form in inline.formset.forms] == [newer, older]


def test_the_secret_is_not_on_the_change_page(staff, endpoint):
    response = staff.get(change_url(endpoint))

    assert response.status_code == 200
    assert endpoint.url in response.content.decode()
    assert endpoint.secret not in response.content.decode()
    assert endpoint.secret[len("whsec_") :] not in response.content.decode()


def test_adding_an_endpoint_shows_its_secret_once_and_logs_it(staff, company, board_user):
    data = form_data(staff.get(ADD)) | {
        "company": company.pk,
        "url": "https://hooks.example.com/new",
        "events": ["issue.done"],
    }

    response = staff.post(ADD, data, follow=True)

    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.events, endpoint.active) == (
        "https://hooks.example.com/new",
        ["issue.done"],
        True,
    )
    assert endpoint.secret.startswith("whsec_")
    assert [text for text in messages_of(response) if endpoint.secret in text] != []
    [event] = activity("webhook.created")
    assert (event.entity_id, event.actor_id) == (endpoint.pk, board_user.pk)
    # Once: the next page shows it no more.
    assert endpoint.secret not in staff.get(change_url(endpoint)).content.decode()


def test_a_link_local_url_is_a_form_error_and_writes_nothing(staff, company):
    data = form_data(staff.get(ADD)) | {
        "company": company.pk,
        "url": "http://169.254.169.254/",
        "events": ["*"],
    }

    response = staff.post(ADD, data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.errors) == ["url"]
    assert not WebhookEndpoint.objects.exists()
    assert not ActivityEvent.objects.exists()


@pytest.mark.parametrize(
    ("edit", "field"),
    [({"url": "ftp://hooks.example.com/"}, "url"), ({"events": ["*", "issue.done"]}, "events")],
)
def test_an_edit_the_service_refuses_is_an_error_on_its_field(staff, endpoint, edit, field):
    data = form_data(staff.get(change_url(endpoint))) | edit

    response = staff.post(change_url(endpoint), data)

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == [field]
    endpoint.refresh_from_db()
    assert (endpoint.url, endpoint.events) == ("https://hooks.example.com/a", ["*"])
    assert not ActivityEvent.objects.exists()


def test_editing_an_endpoint_logs_what_changed_and_an_unchanged_save_nothing(staff, endpoint):
    untouched = staff.post(change_url(endpoint), form_data(staff.get(change_url(endpoint))))
    data = form_data(staff.get(change_url(endpoint))) | {"events": ["issue.done", "issue.failed"]}
    edited = staff.post(change_url(endpoint), data)

    assert (untouched.status_code, edited.status_code) == (302, 302)
    endpoint.refresh_from_db()
    assert endpoint.events == ["issue.done", "issue.failed"]
    [event] = ActivityEvent.objects.all()
    assert (event.action, event.details) == (
        "webhook.updated",
        {"changes": {"events": {"from": ["*"], "to": ["issue.done", "issue.failed"]}}},
    )


def test_reenabling_sets_active_and_clears_the_disabled_reason(staff, company):
    disabled = factories.WebhookEndpointFactory(
        company=company, active=False, disabled_reason="Every delivery failed for 24 h"
    )

    response = act(staff, ENDPOINTS, "reenable_selected", disabled)

    assert "1 endpoint(s) re-enabled." in messages_of(response)
    disabled.refresh_from_db()
    assert (disabled.active, disabled.disabled_reason) == (True, "")
    [event] = activity("webhook.updated")
    assert event.entity_id == disabled.pk
    assert event.details["changes"]["active"] == {"from": False, "to": True}


def test_send_test_ping_queues_a_ping_delivery(staff, endpoint):
    response = act(staff, ENDPOINTS, "ping_selected", endpoint)

    assert "Test ping queued to 1 endpoint(s)." in messages_of(response)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint, delivery.event_type, delivery.status, delivery.attempt) == (
        endpoint,
        "ping",
        WebhookDelivery.Status.PENDING,
        1,
    )
    assert activity("webhook.tested")[0].details == {"eventId": delivery.event_id}


def test_rotating_shows_the_new_secret_once(staff, endpoint):
    old = endpoint.secret

    response = act(staff, ENDPOINTS, "rotate_secret", endpoint)

    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert [text for text in messages_of(response) if endpoint.secret in text] != []
    assert [event.entity_id for event in activity("webhook.secret_rotated")] == [endpoint.pk]
    assert endpoint.secret not in staff.get(change_url(endpoint)).content.decode()


def test_rotating_two_at_once_is_refused(staff, endpoint, company):
    other = factories.WebhookEndpointFactory(company=company)
    secrets = {endpoint.secret, other.secret}

    response = act(staff, ENDPOINTS, "rotate_secret", endpoint, other)

    assert messages_of(response) == ["Select exactly one endpoint to rotate."]
    assert set(WebhookEndpoint.objects.values_list("secret", flat=True)) == secrets
    assert not ActivityEvent.objects.exists()


def test_deleting_an_endpoint_goes_through_the_service_with_its_log(staff, endpoint):
    factories.WebhookDeliveryFactory(endpoint=endpoint)
    url = reverse("admin:agents_webhookendpoint_delete", args=[quote(endpoint.pk)])

    confirm = staff.get(url)
    response = staff.post(url, {"post": "yes"})

    assert confirm.status_code == 200
    assert not confirm.context["perms_lacking"]
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()
    assert not WebhookDelivery.objects.exists()
    assert activity("webhook.deleted")[0].details == {"url": "https://hooks.example.com/a"}


def test_redeliver_queues_the_next_attempt_of_the_same_event(staff, endpoint, board_user):
    failed = factories.WebhookDeliveryFactory(
        endpoint=endpoint, status=WebhookDelivery.Status.FAILED, error="HTTP 500"
    )

    response = act(staff, DELIVERIES, "redeliver_selected", failed)

    assert "1 redelivery(ies) queued." in messages_of(response)
    again = WebhookDelivery.objects.exclude(pk=failed.pk).get()
    assert (again.event_id, again.event_type, again.payload, again.attempt, again.status) == (
        failed.event_id,
        failed.event_type,
        failed.payload,
        2,
        WebhookDelivery.Status.PENDING,
    )
    [event] = activity("webhook.redelivered")
    assert (event.entity_id, event.actor_id) == (endpoint.pk, board_user.pk)


def test_the_delivery_log_cannot_be_written(staff, endpoint):
    delivery = factories.WebhookDeliveryFactory(endpoint=endpoint)
    change = reverse("admin:agents_webhookdelivery_change", args=[quote(delivery.pk)])
    delete = reverse("admin:agents_webhookdelivery_delete", args=[quote(delivery.pk)])

    assert staff.get(reverse("admin:agents_webhookdelivery_add")).status_code == 403
    assert staff.post(change, {"status": "succeeded"}).status_code == 403
    assert staff.post(delete, {"post": "yes"}).status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING


def test_another_companys_board_sees_and_changes_nothing_here(
    client, endpoint, other_company, company
):
    delivery = factories.WebhookDeliveryFactory(endpoint=endpoint)
    outsider = factories.MembershipFactory(company=other_company, user__username="mallory").user
    grant_webhook_permissions(outsider)
    client.force_login(outsider)
    theirs = factories.WebhookEndpointFactory(company=other_company)

    endpoints = client.get(ENDPOINTS)
    page = client.get(change_url(endpoint))
    log = client.get(DELIVERIES)
    act(client, ENDPOINTS, "rotate_secret", endpoint)
    act(client, DELIVERIES, "redeliver_selected", delivery)
    edited = client.post(change_url(endpoint), {"url": "https://evil.example.com/", "events": "*"})

    assert list(endpoints.context["cl"].result_list) == [theirs]
    assert company.name not in endpoints.content.decode()  # not even in the company filter
    assert page.status_code == 302  # "does not exist", as a missing one
    assert list(log.context["cl"].result_list) == []
    assert edited.status_code == 302
    refreshed = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert (refreshed.url, refreshed.secret) == (endpoint.url, endpoint.secret)
    assert WebhookDelivery.objects.count() == 1
    assert not ActivityEvent.objects.exists()


def test_the_delivery_log_says_how_an_attempt_went_and_when_the_next_is(client, admin_user):
    client.force_login(admin_user)
    factories.WebhookDeliveryFactory(
        event_type="issue.updated",
        status=WebhookDelivery.Status.FAILED,
        response_status=500,
        duration_ms=84,
        error="Server error",
        next_attempt_at=timezone.now() + timedelta(hours=2, seconds=30),
    )

    html = client.get(reverse("admin:agents_webhookdelivery_changelist")).content.decode()

    assert "500 · 84 ms" in html
    assert 'title="Server error">Server error<' in html
    assert ">in 2\xa0hours<" in html
