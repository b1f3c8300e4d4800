"""Webhook endpoints on `/api` (DESIGN §9): the board says where the company's events are POSTed
and which ones. The signing secret is answered at creation and rotation only, never read back;
unknown event names and URLs the target rules refuse are 400s naming the field; agents are
refused (403); another company's endpoint is a 404; every write leaves an activity row. A test
ping reaches a real receiver on 127.0.0.1, signed with the endpoint's secret."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agents import delivery
from agents.delivery import new_webhook_secret
from agents.events import EVENT_TYPES
from agents.models import WebhookDelivery, WebhookEndpoint
from companies.models import ActivityEvent
from tests.agents.receivers import running_receiver
from tests.agents.test_wake_delivery import DATABASE_TASKS, run_worker
from tests.conftest import iso
from tests.wire import stored, wire

NOT_FOUND = {"error": "Not found", "code": "not_found"}
HOOK_URL = "https://hooks.example.com/paperclip"


def make_webhook(company, **fields) -> WebhookEndpoint:
    fields = {"url": HOOK_URL, "events": ["issue.created"], "description": "CRM sync"} | fields
    return WebhookEndpoint.objects.create(company=company, secret=new_webhook_secret(), **fields)


def webhook_body(webhook: WebhookEndpoint) -> dict:
    return {
        "id": wire(webhook),
        "companyId": wire(webhook.company_id),
        "url": webhook.url,
        "events": webhook.events,
        "description": webhook.description,
        "active": webhook.active,
        "disabledReason": webhook.disabled_reason,
        "createdAt": iso(webhook.created_at),
        "updatedAt": iso(webhook.updated_at),
    }


def activity_about(webhook_id: str) -> list[tuple[str, str, str, dict]]:
    """(action, actor type, actor id, details) of every row about the endpoint, oldest first."""
    rows = ActivityEvent.objects.filter(entity_type="webhook", entity_id=webhook_id)
    return [
        (r.action, r.actor_type, r.actor_id, r.details) for r in rows.order_by("created_at", "id")
    ]


def create(client, company, **body):
    body = {"url": HOOK_URL, "events": ["issue.created", "issue.done"]} | body
    return client.post(f"/api/companies/{company.pk}/webhooks", body, format="json")


@pytest.fixture
def webhook(company):
    return make_webhook(company)


# -- POST /api/companies/{id}/webhooks -------------------------------------------------------------


@pytest.mark.django_db
def test_board_creates_a_webhook_and_the_secret_is_answered_this_once(board, board_user, company):
    response = create(board, company, description="CRM sync")

    assert response.status_code == 201, response.json()
    webhook = WebhookEndpoint.objects.get(pk=stored(response.json()["id"], WebhookEndpoint))
    assert (webhook.company, webhook.url, webhook.events, webhook.description) == (
        company,
        HOOK_URL,
        ["issue.created", "issue.done"],
        "CRM sync",
    )
    assert (webhook.active, webhook.disabled_reason) == (True, "")
    assert webhook.secret.startswith("whsec_")
    assert response.json() == webhook_body(webhook) | {"secret": webhook.secret}
    assert activity_about(webhook.pk) == [
        (
            "webhook.created",
            "user",
            board_user.pk,
            {"url": HOOK_URL, "events": ["issue.created", "issue.done"]},
        )
    ]
    # ...and never again
    for read in (f"/api/webhooks/{webhook.pk}", f"/api/companies/{company.pk}/webhooks"):
        assert webhook.secret not in board.get(read).content.decode()
    assert "secret" not in board.get(f"/api/webhooks/{webhook.pk}").json()


@pytest.mark.django_db
def test_star_subscribes_to_every_event(board, company):
    response = create(board, company, events=["*"])

    assert response.status_code == 201, response.json()
    assert response.json()["events"] == ["*"]
    assert WebhookEndpoint.objects.get().events == ["*"]


@pytest.mark.django_db
def test_every_event_name_may_be_subscribed_to_each_once(board, company):
    response = create(board, company, events=[*EVENT_TYPES, "issue.done"])

    assert response.status_code == 201, response.json()
    assert response.json()["events"] == list(EVENT_TYPES)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("events", "message"),
    [
        (["issue.created", "issue.exploded"], "Unknown event names: 'issue.exploded'."),
        (["*", "issue.done"], '"*" subscribes to every event; send it alone.'),
        ([], 'A non-empty list of event names, or ["*"].'),
    ],
)
def test_unknown_event_names_are_400_naming_events_and_write_nothing(
    board, company, events, message
):
    response = create(board, company, events=events)

    assert response.status_code == 400, response.json()
    assert response.json() == {
        "error": "Validation failed",
        "code": "validation_error",
        "details": {"events": [message]},
    }
    assert not WebhookEndpoint.objects.exists()
    assert not ActivityEvent.objects.exists()


@pytest.mark.django_db
def test_url_and_events_are_required(board, company):
    response = board.post(f"/api/companies/{company.pk}/webhooks", {}, format="json")

    assert response.status_code == 400
    assert set(response.json()["details"]) == {"url", "events"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/paperclip",
        "javascript:alert(1)",
        "not a url",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]/hook",
        "http://127.0.0.1:8000/hook",
        "http://10.0.0.7/hook",
        "http://localhost/hook",
    ],
)
def test_a_url_the_target_rules_refuse_is_400_naming_url(board, company, settings, url):
    settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = False

    response = create(board, company, url=url)

    assert response.status_code == 400, response.json()
    assert list(response.json()["details"]) == ["url"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_link_local_is_refused_even_when_private_targets_are_allowed(board, company, settings):
    settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = True

    response = create(board, company, url="http://169.254.169.254/latest/meta-data")

    assert response.status_code == 400
    assert response.json()["details"] == {
        "url": ["169.254.169.254 is a link-local address; it is never allowed."]
    }


@pytest.mark.django_db
def test_an_agent_may_not_create_a_webhook_403(agent_client, company):
    response = create(agent_client, company)

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert not WebhookEndpoint.objects.exists()
    assert not ActivityEvent.objects.exists()


@pytest.mark.django_db
def test_another_companys_board_cannot_create_one_here_404(other_board, company):
    response = create(other_board, company)

    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert not WebhookEndpoint.objects.exists()


# -- GET /api/companies/{id}/webhooks, GET /api/webhooks/{id} -------------------------------------


@pytest.mark.django_db
def test_the_board_lists_the_companys_webhooks_newest_first(
    board, company, other_company, django_assert_num_queries
):
    older = make_webhook(company, description="older")
    newer = make_webhook(company, url="https://other.example.com/in", events=["*"])
    make_webhook(other_company)

    # inside the request's savepoint (2): the board token, the caller's seats, the company,
    # the page
    with django_assert_num_queries(6):
        response = board.get(f"/api/companies/{company.pk}/webhooks")

    assert response.status_code == 200
    assert response.json() == [webhook_body(newer), webhook_body(older)]


@pytest.mark.django_db
def test_a_webhook_is_read_by_either_id_form(board, webhook):
    for ref in (webhook.pk, wire(webhook)):
        response = board.get(f"/api/webhooks/{ref}")
        assert response.status_code == 200
        assert response.json() == webhook_body(webhook)


@pytest.mark.django_db
def test_an_unknown_or_malformed_webhook_id_is_404(board):
    for ref in ("whk_00000000000000000000000000", "nope"):
        response = board.get(f"/api/webhooks/{ref}")
        assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.django_db
def test_another_companys_webhooks_are_404(other_board, company, webhook):
    assert other_board.get(f"/api/companies/{company.pk}/webhooks").json() == NOT_FOUND
    for method, path in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/rotate-secret"),
        ("post", "/test"),
    ]:
        response = getattr(other_board, method)(
            f"/api/webhooks/{webhook.pk}{path}", {"active": False}, format="json"
        )
        assert (response.status_code, response.json()) == (404, NOT_FOUND), (method, path)
    webhook.refresh_from_db()
    assert webhook.active
    assert not WebhookDelivery.objects.exists()
    assert not ActivityEvent.objects.exists()


@pytest.mark.django_db
def test_agents_are_refused_every_webhook_route_403(agent_client, company, webhook):
    assert agent_client.get(f"/api/companies/{company.pk}/webhooks").status_code == 403
    secret = webhook.secret
    for method, path in [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/rotate-secret"),
        ("post", "/test"),
    ]:
        response = getattr(agent_client, method)(
            f"/api/webhooks/{webhook.pk}{path}", {"active": False}, format="json"
        )
        assert response.status_code == 403, (method, path, response.content)
        assert response.json()["code"] == "forbidden"
    webhook.refresh_from_db()
    assert (webhook.active, webhook.secret) == (True, secret)
    assert not WebhookDelivery.objects.exists()
    assert not ActivityEvent.objects.exists()


# -- PATCH /api/webhooks/{id} ----------------------------------------------------------------------


@pytest.mark.django_db
def test_board_changes_url_events_description_and_active(board, board_user, webhook):
    response = board.patch(
        f"/api/webhooks/{webhook.pk}",
        {
            "url": "https://crm.example.com/in",
            "events": ["issue.done", "agent.paused"],
            "description": "CRM",
            "active": False,
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    webhook.refresh_from_db()
    assert (webhook.url, webhook.events, webhook.description, webhook.active) == (
        "https://crm.example.com/in",
        ["issue.done", "agent.paused"],
        "CRM",
        False,
    )
    assert response.json() == webhook_body(webhook)
    assert "secret" not in response.json()
    assert activity_about(webhook.pk) == [
        (
            "webhook.updated",
            "user",
            board_user.pk,
            {
                "changes": {
                    "url": {"from": HOOK_URL, "to": "https://crm.example.com/in"},
                    "events": {"from": ["issue.created"], "to": ["issue.done", "agent.paused"]},
                    "description": {"from": "CRM sync", "to": "CRM"},
                    "active": {"from": True, "to": False},
                }
            },
        )
    ]


@pytest.mark.django_db
def test_re_enabling_a_disabled_webhook_clears_the_reason(board, company):
    webhook = make_webhook(company, active=False, disabled_reason="Every delivery failed for 24 h")

    response = board.patch(f"/api/webhooks/{webhook.pk}", {"active": True}, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["active"], response.json()["disabledReason"]) == (True, "")
    webhook.refresh_from_db()
    assert (webhook.active, webhook.disabled_reason) == (True, "")


@pytest.mark.django_db
def test_an_unchanged_patch_logs_nothing(board, webhook):
    response = board.patch(
        f"/api/webhooks/{webhook.pk}", {"description": webhook.description}, format="json"
    )

    assert response.status_code == 200
    assert activity_about(webhook.pk) == []


@pytest.mark.django_db
def test_a_patch_is_held_to_the_same_rules(board, webhook, settings):
    settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = False

    bad_url = board.patch(
        f"/api/webhooks/{webhook.pk}", {"url": "http://169.254.169.254/"}, format="json"
    )
    bad_events = board.patch(f"/api/webhooks/{webhook.pk}", {"events": ["nope"]}, format="json")
    unknown_field = board.patch(f"/api/webhooks/{webhook.pk}", {"secret": "whsec_x"}, format="json")

    assert (bad_url.status_code, list(bad_url.json()["details"])) == (400, ["url"])
    assert (bad_events.status_code, list(bad_events.json()["details"])) == (400, ["events"])
    assert unknown_field.status_code == 400
    secret = webhook.secret
    webhook.refresh_from_db()
    assert (webhook.url, webhook.events, webhook.secret) == (HOOK_URL, ["issue.created"], secret)


# -- DELETE /api/webhooks/{id} ---------------------------------------------------------------------


@pytest.mark.django_db
def test_board_deletes_a_webhook_204(board, board_user, webhook):
    response = board.delete(f"/api/webhooks/{webhook.pk}")

    assert response.status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert activity_about(webhook.pk) == [
        ("webhook.deleted", "user", board_user.pk, {"url": HOOK_URL})
    ]
    assert board.get(f"/api/webhooks/{webhook.pk}").status_code == 404


# -- POST /api/webhooks/{id}/rotate-secret ---------------------------------------------------------


@pytest.mark.django_db
def test_rotation_answers_a_new_secret_once(board, board_user, webhook):
    old = webhook.secret

    response = board.post(f"/api/webhooks/{webhook.pk}/rotate-secret")

    assert response.status_code == 200, response.json()
    webhook.refresh_from_db()
    assert webhook.secret.startswith("whsec_") and webhook.secret != old
    assert response.json() == webhook_body(webhook) | {"secret": webhook.secret}
    assert activity_about(webhook.pk) == [("webhook.secret_rotated", "user", board_user.pk, {})]
    assert webhook.secret not in board.get(f"/api/webhooks/{webhook.pk}").content.decode()


# -- POST /api/webhooks/{id}/test: a ping through the worker to a real receiver -------------------


@pytest.fixture
def database_tasks(settings):
    settings.TASKS = DATABASE_TASKS


@pytest.mark.django_db(transaction=True)
def test_a_test_ping_arrives_signed_with_the_endpoints_secret(
    board, board_user, company, database_tasks
):
    with running_receiver() as receiver:
        created = create(board, company, url=receiver.url, events=["issue.done"]).json()
        webhook = WebhookEndpoint.objects.get(pk=stored(created["id"], WebhookEndpoint))

        response = board.post(f"/api/webhooks/{created['id']}/test")

        assert response.status_code == 202, response.json()
        [pending] = WebhookDelivery.objects.all()
        assert response.json() == {
            "id": wire(pending),
            "eventId": wire(pending.event_id),
            "eventType": "ping",
            "attempt": 1,
            "status": "pending",
            "responseStatus": None,
            "responseBody": "",
            "durationMs": None,
            "error": "",
            "nextAttemptAt": None,
            "createdAt": iso(pending.created_at),
        }
        assert receiver.requests == []  # the request only queued it
        run_worker()

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/wake")
    assert request.headers["content-type"] == "application/json"
    event = Webhook(created["secret"]).verify(request.body, request.headers)
    assert request.headers["webhook-id"] == event["id"] == pending.event_id
    assert event["id"].startswith("evt_")
    assert event == {
        "id": pending.event_id,
        "type": "ping",
        "createdAt": event["createdAt"],
        "companyId": company.pk,
        "actor": {"type": "user", "id": board_user.pk},
        "runId": None,
        "data": {"webhookId": webhook.pk, "url": receiver.url},
    }
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.endpoint_id, delivery.attempt, delivery.status) == (webhook.pk, 1, "succeeded")
    assert (delivery.response_status, delivery.response_body) == (200, '{"received": true}')
    assert (delivery.error, delivery.next_attempt_at) == ("", None)
    assert [row[0] for row in activity_about(webhook.pk)] == ["webhook.created", "webhook.tested"]
    assert activity_about(webhook.pk)[1][3] == {"eventId": pending.event_id}


@pytest.mark.django_db(transaction=True)
def test_after_rotation_the_old_secret_no_longer_signs(board, company, database_tasks):
    with running_receiver() as receiver:
        created = create(board, company, url=receiver.url).json()
        rotated = board.post(f"/api/webhooks/{created['id']}/rotate-secret").json()
        board.post(f"/api/webhooks/{created['id']}/test")
        run_worker()

    [request] = receiver.requests
    assert Webhook(rotated["secret"]).verify(request.body, request.headers)["type"] == "ping"
    with pytest.raises(WebhookVerificationError):
        Webhook(created["secret"]).verify(request.body, request.headers)


@pytest.mark.django_db(transaction=True)
def test_a_failed_ping_is_retried_with_the_same_webhook_id_and_every_attempt_logged(
    board, company, database_tasks, monkeypatch
):
    monkeypatch.setattr(delivery, "WEBHOOK_RETRY_DELAYS", (0, 0))
    with running_receiver(statuses=(500, 503)) as receiver:
        created = create(board, company, url=receiver.url).json()
        board.post(f"/api/webhooks/{created['id']}/test")
        run_worker()

    assert len(receiver.requests) == 3
    event_ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert len(event_ids) == 1
    rows = WebhookDelivery.objects.order_by("attempt")
    assert [(r.attempt, r.status, r.response_status, r.error) for r in rows] == [
        (1, "failed", 500, "HTTP 500"),
        (2, "failed", 503, "HTTP 503"),
        (3, "succeeded", 200, ""),
    ]
    assert {r.event_id for r in rows} == event_ids
    assert rows[0].next_attempt_at is not None and rows[2].next_attempt_at is None


@pytest.mark.django_db(transaction=True)
def test_a_ping_to_a_deleted_webhook_is_dropped(board, company, database_tasks):
    with running_receiver() as receiver:
        created = create(board, company, url=receiver.url).json()
        board.post(f"/api/webhooks/{created['id']}/test")
        board.delete(f"/api/webhooks/{created['id']}")
        run_worker()

    assert receiver.requests == []
    assert not WebhookDelivery.objects.exists()


# -- GET /api/webhooks/{id}/deliveries: the delivery log -------------------------------------------


def delivery_body(row: WebhookDelivery) -> dict:
    return {
        "id": wire(row),
        "eventId": wire(row.event_id),
        "eventType": row.event_type,
        "attempt": row.attempt,
        "status": row.status,
        "responseStatus": row.response_status,
        "responseBody": row.response_body,
        "durationMs": row.duration_ms,
        "error": row.error,
        "nextAttemptAt": iso(row.next_attempt_at) if row.next_attempt_at else None,
        "createdAt": iso(row.created_at),
    }


def log_row(webhook: WebhookEndpoint, **fields) -> WebhookDelivery:
    fields = {"event_id": "evt_01m8rd9461psyv1mhrdaj30j6k", "event_type": "ping"} | fields
    return WebhookDelivery.objects.create(
        company_id=webhook.company_id, endpoint=webhook, payload={"type": "ping"}, **fields
    )


@pytest.mark.django_db(transaction=True)
def test_the_log_shows_every_attempt_of_a_receiver_that_failed_twice_newest_first(
    board, company, database_tasks, monkeypatch
):
    monkeypatch.setattr(delivery, "WEBHOOK_RETRY_DELAYS", (0, 0))
    with running_receiver(statuses=(500, 503)) as receiver:
        created = create(board, company, url=receiver.url).json()
        board.post(f"/api/webhooks/{created['id']}/test")
        run_worker()

    response = board.get(f"/api/webhooks/{created['id']}/deliveries")

    assert response.status_code == 200, response.json()
    rows = list(WebhookDelivery.objects.order_by("-attempt"))
    assert response.json() == [delivery_body(row) for row in rows]
    assert [(r["attempt"], r["status"], r["responseStatus"]) for r in response.json()] == [
        (3, "succeeded", 200),
        (2, "failed", 503),
        (1, "failed", 500),
    ]
    assert [r["responseBody"] for r in response.json()] == [
        '{"received": true}',
        '{"received": false}',
        '{"received": false}',
    ]
    assert all(r["durationMs"] is not None for r in response.json())
    # one event, one webhook-id on the wire, the id the log shows
    assert {r["eventId"] for r in response.json()} == {wire(rows[0].event_id)}
    assert [req.headers["webhook-id"] for req in receiver.requests] == [rows[0].event_id] * 3


@pytest.mark.django_db
def test_the_log_is_paged_with_a_cursor_in_a_fixed_number_of_queries(
    board, webhook, company, django_assert_num_queries
):
    rows = [log_row(webhook, attempt=n) for n in (1, 2, 3)]
    log_row(make_webhook(company))  # another endpoint's attempt

    # inside the request's savepoint (2): the board token, the caller's seats, the endpoint,
    # the page
    with django_assert_num_queries(6):
        first = board.get(f"/api/webhooks/{webhook.pk}/deliveries?limit=2")
    rest = board.get(
        f"/api/webhooks/{webhook.pk}/deliveries?limit=2&cursor={first['X-Next-Cursor']}"
    )

    assert first.json() == [delivery_body(rows[2]), delivery_body(rows[1])]
    assert rest.json() == [delivery_body(rows[0])]
    assert "X-Next-Cursor" not in rest


@pytest.mark.django_db
def test_a_bad_cursor_is_400(board, webhook):
    response = board.get(f"/api/webhooks/{webhook.pk}/deliveries?cursor=nope")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


# -- POST /api/webhooks/{id}/deliveries/{did}/redeliver --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_redeliver_sends_the_same_webhook_id_again_as_the_next_attempt_and_logs_it(
    board, board_user, company, database_tasks
):
    with running_receiver() as receiver:
        created = create(board, company, url=receiver.url).json()
        board.post(f"/api/webhooks/{created['id']}/test")
        run_worker()
        [first] = WebhookDelivery.objects.all()

        response = board.post(f"/api/webhooks/{created['id']}/deliveries/{wire(first)}/redeliver")

        assert response.status_code == 202, response.json()
        again = WebhookDelivery.objects.get(attempt=2)
        assert response.json() == delivery_body(again)
        assert (again.event_id, again.status, again.payload) == (
            first.event_id,
            "pending",
            first.payload,
        )
        assert len(receiver.requests) == 1  # the request only queued it
        run_worker()

    first_sent, resent = receiver.requests
    assert resent.headers["webhook-id"] == first_sent.headers["webhook-id"] == first.event_id
    assert Webhook(created["secret"]).verify(resent.body, resent.headers) == first_sent.json()
    log = board.get(f"/api/webhooks/{created['id']}/deliveries").json()
    assert [(r["attempt"], r["status"], r["eventId"]) for r in log] == [
        (2, "succeeded", wire(first.event_id)),
        (1, "succeeded", wire(first.event_id)),
    ]
    webhook_id = stored(created["id"], WebhookEndpoint)
    assert activity_about(webhook_id)[-1] == (
        "webhook.redelivered",
        "user",
        board_user.pk,
        {"eventId": first.event_id, "deliveryId": first.pk, "attempt": 2},
    )


@pytest.mark.django_db
def test_redeliver_of_an_event_waiting_for_its_retry_makes_that_attempt_due_now(board, webhook):
    first = log_row(webhook, status="failed", response_status=500, error="HTTP 500")
    waiting = log_row(webhook, attempt=2, next_attempt_at=first.created_at + timedelta(hours=2))

    response = board.post(f"/api/webhooks/{webhook.pk}/deliveries/{first.pk}/redeliver")

    assert response.status_code == 202, response.json()
    waiting.refresh_from_db()
    assert waiting.next_attempt_at <= timezone.now()
    assert response.json() == delivery_body(waiting)
    assert WebhookDelivery.objects.count() == 2  # no second line of retries


@pytest.mark.django_db
def test_a_delivery_is_found_only_under_its_own_endpoint_404(board, company, webhook):
    elsewhere = log_row(make_webhook(company))

    for ref in (elsewhere.pk, "whd_00000000000000000000000000", "nope"):
        response = board.post(f"/api/webhooks/{webhook.pk}/deliveries/{ref}/redeliver")
        assert (response.status_code, response.json()) == (404, NOT_FOUND), ref
    assert WebhookDelivery.objects.count() == 1
    assert activity_about(webhook.pk) == []


@pytest.mark.django_db
def test_another_companys_delivery_log_and_redeliver_are_404(other_board, webhook):
    row = log_row(webhook, status="failed")

    listed = other_board.get(f"/api/webhooks/{webhook.pk}/deliveries")
    redelivered = other_board.post(f"/api/webhooks/{webhook.pk}/deliveries/{row.pk}/redeliver")

    assert (listed.status_code, listed.json()) == (404, NOT_FOUND)
    assert (redelivered.status_code, redelivered.json()) == (404, NOT_FOUND)
    assert WebhookDelivery.objects.count() == 1
    assert not ActivityEvent.objects.exists()


@pytest.mark.django_db
def test_agents_may_not_read_the_log_or_redeliver_403(agent_client, webhook):
    row = log_row(webhook, status="failed")

    listed = agent_client.get(f"/api/webhooks/{webhook.pk}/deliveries")
    redelivered = agent_client.post(f"/api/webhooks/{webhook.pk}/deliveries/{row.pk}/redeliver")

    assert (listed.status_code, listed.json()["code"]) == (403, "forbidden")
    assert (redelivered.status_code, redelivered.json()["code"]) == (403, "forbidden")
    assert WebhookDelivery.objects.count() == 1
    assert not ActivityEvent.objects.exists()
