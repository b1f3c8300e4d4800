"""The OpenAPI schema at `/api/openapi.json` is an honest contract (DESIGN §5).

Every error an operation can answer is declared, each with the one shared `Error` component
(`{"error", "code", "details"}`), so a client or a fuzzer finds no undocumented status; the
bodies the API really sends on errors match that component; attachment fields and downloads are
described as they are; and the schema generates without a warning.
"""

from __future__ import annotations

from io import StringIO

import jsonschema
import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

ERROR_REF = {"$ref": "#/components/schemas/Error"}
V1_ERROR_REF = {"$ref": "#/components/schemas/V1Error"}
WRITES = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        response = APIClient().get("/api/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def error_schema_of(response: dict) -> dict:
    return response["content"]["application/json"]["schema"]


def error_ref_of(path: str) -> dict:
    """Each dialect's errors have its own component (`/v1`: DESIGN §8)."""
    return V1_ERROR_REF if path.startswith("/v1/") else ERROR_REF


def test_schema_has_one_shared_error_component(schema):
    error = schema["components"]["schemas"]["Error"]

    assert error["type"] == "object"
    assert error["required"] == ["error", "code"]
    assert error["properties"]["error"]["type"] == "string"
    assert error["properties"]["code"]["type"] == "string"
    assert error["properties"]["details"]["nullable"] is True
    assert "type" not in error["properties"]["details"]  # any JSON value


def test_checkout_declares_its_409_and_422_with_the_error_component(schema):
    responses = schema["paths"]["/api/issues/{id}/checkout"]["post"]["responses"]

    assert error_schema_of(responses["409"]) == ERROR_REF
    assert error_schema_of(responses["422"]) == ERROR_REF
    assert {"200", "400", "401", "403", "404", "413", "415", "500", "503"} <= set(responses)


def test_every_error_response_of_every_operation_is_its_dialects_error_component(schema):
    for path, method, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                assert error_schema_of(response) == error_ref_of(path), (method, path, status)


def test_every_operation_declares_the_errors_it_can_answer(schema):
    for path, method, operation in operations(schema):
        declared = set(operation["responses"])
        where = (method, path, sorted(declared))
        assert {"406", "500", "503"} <= declared, where
        if path != "/api/health":
            assert {"400", "401", "403"} <= declared, where
            www_authenticate = operation["responses"]["401"]["headers"]["WWW-Authenticate"]
            assert www_authenticate["schema"] == {"type": "string"}
        if "{" in path:
            assert "404" in declared, where
        if method in WRITES:
            assert {"400", "409", "422"} <= declared, where
        if "requestBody" in operation:
            assert {"413", "415"} <= declared, where


def test_health_needs_no_credentials_so_declares_no_credential_errors(schema):
    responses = schema["paths"]["/api/health"]["get"]["responses"]

    assert set(responses) == {"200", "304", "406", "500", "503"}
    assert "Retry-After" in responses["503"]["headers"]


def test_every_json_get_declares_its_etag_and_304(schema):
    """Conditional GET (paperclip.conditional) is in the contract: generated clients can cache."""
    gets = [
        operations["get"]
        for operations in schema["paths"].values()
        if "get" in operations
        and "application/json" in operations["get"]["responses"].get("200", {}).get("content", {})
    ]
    inbox = schema["paths"]["/api/companies/{company_pk}/issues"]

    assert len(gets) > 50
    assert all("304" in get["responses"] for get in gets)
    assert all("ETag" in get["responses"]["200"]["headers"] for get in gets)
    assert "If-None-Match" in [p["name"] for p in inbox["get"]["parameters"]]
    assert "304" not in inbox["post"]["responses"]


def test_issue_patch_declares_412_for_a_stale_if_match(schema):
    patch = schema["paths"]["/api/issues/{id}"]["patch"]

    assert "If-Match" in [p["name"] for p in patch["parameters"] if p["in"] == "header"]
    assert error_schema_of(patch["responses"]["412"]) == ERROR_REF
    assert "412" not in schema["paths"]["/api/issues/{id}/checkout"]["post"]["responses"]


def test_lists_declare_400_for_a_bad_cursor_or_limit(schema):
    lists = [
        (path, operation)
        for path, method, operation in operations(schema)
        if method == "get"
        and {"cursor", "limit"} <= {p["name"] for p in operation.get("parameters", [])}
    ]

    assert len(lists) > 10
    for path, operation in lists:
        assert error_schema_of(operation["responses"]["400"]) == error_ref_of(path), path


def test_attachment_issue_comment_id_is_nullable(schema):
    field = schema["components"]["schemas"]["Attachment"]["properties"]["issueCommentId"]

    assert field == {"type": "string", "format": "uuid", "readOnly": True, "nullable": True}


def test_ids_in_responses_are_uuids_and_requests_take_either_form(schema):
    components = schema["components"]["schemas"]
    issue, request = components["Issue"]["properties"], components["IssueWriteRequest"]

    assert issue["id"]["format"] == issue["assigneeAgentId"]["format"] == "uuid"
    assert issue["labelIds"]["items"]["format"] == "uuid"
    assert "format" not in request["properties"]["assigneeAgentId"]
    # An activity row's actor may be the system itself.
    assert "format" not in components["Activity"]["properties"]["actorId"]


def test_attachment_download_is_binary_of_whatever_type_was_stored(schema):
    ok = schema["paths"]["/api/attachments/{id}/content"]["get"]["responses"]["200"]

    assert ok["content"] == {"*/*": {"schema": {"type": "string", "format": "binary"}}}


def test_real_error_bodies_match_the_error_component(schema, board, agent, company):
    error = schema["components"]["schemas"]["Error"]
    held = factories.IssueFactory(company=company, status="in_progress", assignee_agent=agent)
    rival = factories.AgentFactory(company=company, name="Rival")
    run = factories.HeartbeatRunFactory(agent=rival, status="running")
    rival_client = client_for(factories.AgentApiKeyFactory(agent=rival).token, run_id=run.pk)

    answers = {
        401: APIClient().get("/api/agents/me"),
        404: board.get("/api/issues/iss_00000000000000000000000000"),
        400: board.post(f"/api/companies/{company.pk}/issues", {"title": ""}, format="json"),
        409: rival_client.post(f"/api/issues/{held.pk}/checkout", {}, format="json"),
        406: board.get("/api/users/me", HTTP_ACCEPT="text/html"),
    }

    for status, response in answers.items():
        assert response.status_code == status, response.json()
        jsonschema.validate(response.json(), error)
        assert set(response.json()) <= set(error["properties"])


def test_schema_generates_and_validates_without_warnings(tmp_path):
    target = tmp_path / "openapi.json"

    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--format",
        "openapi-json",
        "--file",
        str(target),
        stderr=StringIO(),
    )

    assert '"Error"' in target.read_text()


def test_no_component_is_described_by_the_serializer_base_classes_docstring(schema):
    descriptions = [c.get("description", "") for c in schema["components"]["schemas"].values()]

    assert not [d for d in descriptions if "serializer does not have" in d]


def test_request_bodies_say_they_refuse_fields_they_do_not_have(schema):
    requests = {
        name: component
        for name, component in schema["components"]["schemas"].items()
        if name.endswith("Request") and component.get("type") == "object"
    }

    assert requests
    assert all(c["additionalProperties"] is False for c in requests.values())


def test_limit_declares_its_bounds_per_list(schema):
    def limit_of(path: str) -> dict:
        [limit] = [p for p in schema["paths"][path]["get"]["parameters"] if p["name"] == "limit"]
        return limit["schema"]

    assert limit_of("/api/issues/{issue_pk}/comments") == {
        "type": "integer",
        "minimum": 1,
        "maximum": 500,
        "default": 100,
    }
    assert limit_of("/api/companies/{company_pk}/issues")["maximum"] == 1000


def test_unpaginated_approval_lists_offer_no_cursor_or_filters(schema):
    names = {
        p["name"]
        for p in schema["paths"]["/api/approvals/{id}/comments"]["get"]["parameters"]
        if p["in"] != "header"
    }

    assert names == {"id"}


# -- /v1 (DESIGN §8): its own tag, error component and envelope ------------------------------------

V1_TASK = "/v1/companies/{company_pk}/issues/{id}"


def success_schema_of(operation: dict, status: str = "200") -> dict:
    return operation["responses"][status]["content"]["application/json"]["schema"]


def test_v1_has_its_own_error_component(schema):
    error = schema["components"]["schemas"]["V1Error"]

    assert error["required"] == ["error"]
    inner = error["properties"]["error"]
    assert inner["required"] == ["code", "message", "details", "requestId"]
    assert inner["properties"]["details"]["nullable"] is True


def test_a_v1_operations_errors_point_to_v1_error(schema):
    responses = schema["paths"][V1_TASK]["get"]["responses"]

    assert error_schema_of(responses["404"]) == V1_ERROR_REF
    assert error_schema_of(responses["401"]) == V1_ERROR_REF
    verb = schema["paths"][f"{V1_TASK}/assign"]["post"]["responses"]
    assert error_schema_of(verb["409"]) == V1_ERROR_REF
    assert "invalid_transition" in verb["409"]["description"]


def test_a_v1_success_body_is_the_data_meta_envelope(schema):
    body = success_schema_of(schema["paths"][V1_TASK]["get"])

    assert body["required"] == ["data", "meta"]
    assert body["properties"]["data"] == {"$ref": "#/components/schemas/Task"}
    assert body["properties"]["meta"]["required"] == ["requestId"]


def test_a_v1_page_says_next_cursor_and_has_more_in_meta(schema):
    meta = success_schema_of(schema["paths"]["/v1/companies/{company_pk}/issues"]["get"])[
        "properties"
    ]["meta"]

    assert meta["required"] == ["requestId", "nextCursor", "hasMore"]
    assert meta["properties"]["nextCursor"]["nullable"] is True


def test_bulk_declares_its_outcomes_and_counts(schema):
    body = success_schema_of(schema["paths"]["/v1/companies/{company_pk}/issues/bulk"]["post"])

    assert body["properties"]["data"]["type"] == "array"
    assert body["properties"]["data"]["items"] == {"$ref": "#/components/schemas/BulkOutcome"}
    assert body["properties"]["meta"]["required"] == ["requestId", "succeeded", "failed", "dryRun"]


def test_every_v1_operation_is_tagged_v1_and_no_api_one_is(schema):
    v1 = [(path, op) for path, _, op in operations(schema) if path.startswith("/v1/")]

    assert len(v1) >= 10
    assert all(op["tags"] == ["v1"] for _, op in v1)
    assert not [
        p for p, _, op in operations(schema) if p.startswith("/api/") and "v1" in op["tags"]
    ]


def test_api_operations_keep_their_bare_bodies_and_error_component(schema):
    issue = schema["paths"]["/api/issues/{id}"]["get"]["responses"]

    assert success_schema_of({"responses": issue}) == {"$ref": "#/components/schemas/IssueDetail"}
    assert error_schema_of(issue["404"]) == ERROR_REF


def test_v1_ids_are_not_described_as_uuids(schema):
    components = schema["components"]["schemas"]

    assert "format" not in components["Task"]["properties"]["id"]
    assert "format" not in components["V1Team"]["properties"]["id"]
    assert components["Team"]["properties"]["id"]["format"] == "uuid"  # /api's


def test_real_v1_error_bodies_match_the_v1_error_component(schema, board, company):
    error = schema["components"]["schemas"]["V1Error"]
    answers = {
        401: APIClient().get("/v1/whoami"),
        404: board.get(f"/v1/companies/{company.pk}/issues/iss_00000000000000000000000000"),
        400: board.post(f"/v1/companies/{company.pk}/teams", {}, format="json"),
    }

    for status, response in answers.items():
        assert response.status_code == status, response.json()
        jsonschema.validate(response.json(), error)
        assert set(response.json()["error"]) == set(error["properties"]["error"]["properties"])
