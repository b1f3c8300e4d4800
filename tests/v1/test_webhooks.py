"""`/v1` webhook endpoints (DESIGN §9): the same rows and services as `/api`'s, under
`/v1/companies/{cid}/webhooks`, in the `{data, meta}` envelope with ids as stored. The secret is
answered at creation and rotation only; unknown events and refused URLs are 400s naming the
field; agents get 403; another company is a 404; every write is logged; a test ping reaches a
real receiver signed with the endpoint's secret."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agents.delivery import new_webhook_secret
from agents.models import WebhookDelivery, WebhookEndpoint
from companies.models import ActivityEvent
from tests.agents.receivers import running_receiver
from tests.agents.test_wake_delivery import DATABASE_TASKS, run_worker
from tests.conftest import iso

HOOK_URL = "https://hooks.example.com/paperclip"


def webhooks_url(company) -> str:
    return f"/v1/companies/{company.pk}/webhooks"


def webhook_url(webhook: WebhookEndpoint, verb: str = "") -> str:
    return f"/v1/companies/{webhook.company_id}/webhooks/{webhook.pk}{verb}"


def make_webhook(company, **fields) -> WebhookEndpoint:
    fields = {"url": HOOK_URL, "events": ["issue.done"], "description": "CRM"} | fields
    return WebhookEndpoint.objects.create(company=company, secret=new_webhook_secret(), **fields)


def webhook_data(webhook: WebhookEndpoint) -> dict:
    return {
        "id": webhook.pk,
        "companyId": webhook.company_id,
        "url": webhook.url,
        "events": webhook.events,
        "description": webhook.description,
        "active": webhook.active,
        "disabledReason": webhook.disabled_reason,
        "createdAt": iso(webhook.created_at),
        "updatedAt": iso(webhook.updated_at),
    }


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["requestId"] == response.headers["X-Request-Id"]
    return error


def actions() -> list[tuple[str, str, str]]:
    return list(
        ActivityEvent.objects.filter(entity_type="webhook")
        .order_by("created_at", "id")
        .values_list("action", "actor_type", "actor_id")
    )


def create(client, company, **body):
    body = {"url": HOOK_URL, "events": ["issue.done"]} | body
    return client.post(webhooks_url(company), body, format="json")


@pytest.fixture
def webhook(company):
    return make_webhook(company)


VERBS = [("get", ""), ("patch", ""), ("delete", ""), ("post", "/rotate-secret"), ("post", "/test")]


@pytest.mark.django_db
def test_board_creates_a_webhook_and_sees_its_secret_this_once(board, board_user, company):
    response = create(board, company, description="CRM", events=["*"])

    assert response.status_code == 201, response.json()
    webhook = WebhookEndpoint.objects.get()
    assert webhook.pk.startswith("whk_") and webhook.secret.startswith("whsec_")
    assert (webhook.url, webhook.events, webhook.description) == (HOOK_URL, ["*"], "CRM")
    assert response.json()["data"] == webhook_data(webhook) | {"secret": webhook.secret}
    assert actions() == [("webhook.created", "user", board_user.pk)]
    for read in (webhook_url(webhook), webhooks_url(company)):
        response = board.get(read)
        assert response.status_code == 200
        assert webhook.secret not in response.content.decode()
    assert "secret" not in board.get(webhook_url(webhook)).json()["data"]


@pytest.mark.django_db
def test_the_list_is_a_page_of_the_companys_webhooks(board, company, other_company):
    older = make_webhook(company)
    newer = make_webhook(company, url="https://b.example.com/")
    make_webhook(other_company)

    response = board.get(webhooks_url(company))

    assert response.status_code == 200
    assert response.json() == {
        "data": [webhook_data(newer), webhook_data(older)],
        "meta": {
            "requestId": response.headers["X-Request-Id"],
            "nextCursor": None,
            "hasMore": False,
        },
    }


@pytest.mark.django_db
def test_get_patch_and_delete(board, webhook):
    assert board.get(webhook_url(webhook)).json()["data"] == webhook_data(webhook)

    patched = board.patch(
        webhook_url(webhook), {"events": ["issue.failed"], "active": False}, format="json"
    )

    assert patched.status_code == 200, patched.json()
    webhook.refresh_from_db()
    assert (webhook.events, webhook.active) == (["issue.failed"], False)
    assert patched.json()["data"] == webhook_data(webhook)

    deleted = board.delete(webhook_url(webhook))

    assert deleted.status_code == 204
    assert not WebhookEndpoint.objects.exists()
    assert [action for action, *_ in actions()] == ["webhook.updated", "webhook.deleted"]


@pytest.mark.django_db
def test_re_enabling_clears_the_disabled_reason(board, company):
    webhook = make_webhook(company, active=False, disabled_reason="Failing for 24 h")

    response = board.patch(webhook_url(webhook), {"active": True}, format="json")

    assert response.status_code == 200
    assert response.json()["data"]["disabledReason"] == ""
    webhook.refresh_from_db()
    assert (webhook.active, webhook.disabled_reason) == (True, "")


@pytest.mark.django_db
def test_rotation_answers_a_new_secret(board, webhook):
    old = webhook.secret

    response = board.post(webhook_url(webhook, "/rotate-secret"))

    assert response.status_code == 200, response.json()
    webhook.refresh_from_db()
    assert webhook.secret != old
    assert response.json()["data"] == webhook_data(webhook) | {"secret": webhook.secret}
    assert [action for action, *_ in actions()] == ["webhook.secret_rotated"]


@pytest.mark.django_db
def test_an_unknown_event_is_400_naming_events(board, company):
    error = error_of(create(board, company, events=["issue.created", "task.created"]), 400)

    assert error["code"] == "validation_error"
    assert error["details"] == {"events": ["Unknown event names: 'task.created'."]}
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.com/", "http://169.254.169.254/", "http://[fe80::1]/", "x"]
)
def test_a_non_http_or_link_local_url_is_400_naming_url(board, company, settings, url):
    settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = False

    error = error_of(create(board, company, url=url), 400)

    assert list(error["details"]) == ["url"]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_an_agent_is_refused_every_route_403(agent_client, company, webhook):
    assert error_of(agent_client.get(webhooks_url(company)), 403)["code"] == "forbidden"
    assert error_of(create(agent_client, company), 403)["code"] == "forbidden"
    for method, verb in VERBS:
        response = getattr(agent_client, method)(
            webhook_url(webhook, verb), {"active": False}, format="json"
        )
        assert error_of(response, 403)["code"] == "forbidden", (method, verb)
    webhook.refresh_from_db()
    assert webhook.active
    assert WebhookEndpoint.objects.count() == 1
    assert not WebhookDelivery.objects.exists()
    assert actions() == []


@pytest.mark.django_db
def test_another_company_is_404_on_every_route(other_board, other_company, company, webhook):
    assert error_of(other_board.get(webhooks_url(company)), 404)["code"] == "not_found"
    assert error_of(create(other_board, company), 404)["code"] == "not_found"
    for method, verb in VERBS:
        for url in (
            webhook_url(webhook, verb),
            # their own company in the path, our webhook's id
            f"{webhooks_url(other_company)}/{webhook.pk}{verb}",
        ):
            response = getattr(other_board, method)(url, {"active": False}, format="json")
            assert error_of(response, 404)["code"] == "not_found", (method, url)
    webhook.refresh_from_db()
    assert webhook.active
    assert WebhookEndpoint.objects.count() == 1
    assert actions() == []


@pytest.mark.django_db
def test_an_unknown_webhook_id_is_404(board, company):
    for ref in ("whk_00000000000000000000000000", "nope"):
        response = board.get(f"{webhooks_url(company)}/{ref}")
        assert error_of(response, 404)["code"] == "not_found"


@pytest.mark.django_db(transaction=True)
def test_a_test_ping_arrives_signed_and_an_old_secret_no_longer_verifies(board, company, settings):
    settings.TASKS = DATABASE_TASKS
    with running_receiver() as receiver:
        created = create(board, company, url=receiver.url).json()["data"]
        webhook = WebhookEndpoint.objects.get()
        rotated = board.post(webhook_url(webhook, "/rotate-secret")).json()["data"]

        response = board.post(webhook_url(webhook, "/test"))

        assert response.status_code == 202, response.json()
        queued = response.json()["data"]
        assert queued["id"].startswith("whd_") and queued["eventId"].startswith("evt_")
        assert (queued["eventType"], queued["status"], queued["attempt"]) == ("ping", "pending", 1)
        run_worker()

    [request] = receiver.requests
    event = Webhook(rotated["secret"]).verify(request.body, request.headers)
    assert request.headers["webhook-id"] == event["id"] == queued["eventId"]
    assert (event["type"], event["companyId"], event["data"]["webhookId"]) == (
        "ping",
        company.pk,
        webhook.pk,
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(created["secret"]).verify(request.body, request.headers)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.response_status) == ("succeeded", 200)


# -- the delivery log and redeliver ----------------------------------------------------------------


def log_row(webhook: WebhookEndpoint, **fields) -> WebhookDelivery:
    fields = {"event_id": "evt_01m8rd9461psyv1mhrdaj30j6k", "event_type": "ping"} | fields
    return WebhookDelivery.objects.create(
        company_id=webhook.company_id, endpoint=webhook, payload={"type": "ping"}, **fields
    )


def delivery_data(row: WebhookDelivery) -> dict:
    return {
        "id": row.pk,
        "eventId": row.event_id,
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


@pytest.mark.django_db
def test_the_delivery_log_is_a_page_newest_first_with_ids_as_stored(board, company, webhook):
    rows = [log_row(webhook, attempt=n, status="failed") for n in (1, 2, 3)]
    log_row(make_webhook(company))  # another endpoint's

    first = board.get(webhook_url(webhook, "/deliveries?limit=2"))
    cursor = first.json()["meta"]["nextCursor"]
    rest = board.get(webhook_url(webhook, f"/deliveries?limit=2&cursor={cursor}"))

    assert first.status_code == 200, first.json()
    assert first.json() == {
        "data": [delivery_data(rows[2]), delivery_data(rows[1])],
        "meta": {"requestId": first.headers["X-Request-Id"], "nextCursor": cursor, "hasMore": True},
    }
    assert rest.json()["data"] == [delivery_data(rows[0])]
    assert rest.json()["meta"]["hasMore"] is False


@pytest.mark.django_db(transaction=True)
def test_redeliver_resends_the_same_webhook_id_and_the_log_shows_both(board, company, settings):
    settings.TASKS = DATABASE_TASKS
    with running_receiver(statuses=(500,)) as receiver:
        created = create(board, company, url=receiver.url).json()["data"]
        webhook = WebhookEndpoint.objects.get()
        board.post(webhook_url(webhook, "/test"))
        run_worker()  # fails; its retry, 5 s later, is not due in this batch
        failed = WebhookDelivery.objects.get(attempt=1)
        assert failed.status == "failed"

        response = board.post(webhook_url(webhook, f"/deliveries/{failed.pk}/redeliver"))

        assert response.status_code == 202, response.json()
        queued = response.json()["data"]
        assert (queued["eventId"], queued["attempt"], queued["status"]) == (
            failed.event_id,
            2,
            "pending",
        )
        run_worker()

    assert [r.headers["webhook-id"] for r in receiver.requests] == [failed.event_id] * 2
    Webhook(created["secret"]).verify(receiver.requests[1].body, receiver.requests[1].headers)
    log = board.get(webhook_url(webhook, "/deliveries")).json()["data"]
    assert [(r["attempt"], r["status"], r["responseStatus"]) for r in log] == [
        (2, "succeeded", 200),
        (1, "failed", 500),
    ]
    assert [action for action, *_ in actions()][-1] == "webhook.redelivered"


@pytest.mark.django_db
def test_the_log_and_redeliver_are_404_for_another_company_and_403_for_agents(
    board, other_board, other_company, agent_client, webhook
):
    row = log_row(webhook, status="failed")
    paths = [("get", webhook_url(webhook, "/deliveries"))]
    paths += [("post", webhook_url(webhook, f"/deliveries/{row.pk}/redeliver"))]

    for method, url in paths:
        assert error_of(getattr(other_board, method)(url), 404)["code"] == "not_found", url
        theirs = url.replace(webhook.company_id, other_company.pk)
        assert error_of(getattr(other_board, method)(theirs), 404)["code"] == "not_found", url
        assert error_of(getattr(agent_client, method)(url), 403)["code"] == "forbidden", url
    for ref in ("whd_00000000000000000000000000", "nope"):
        response = board.post(webhook_url(webhook, f"/deliveries/{ref}/redeliver"))
        assert error_of(response, 404)["code"] == "not_found"
    assert WebhookDelivery.objects.count() == 1
    assert actions() == []
