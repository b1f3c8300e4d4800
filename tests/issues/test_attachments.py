"""Attachments on an issue: upload (multipart), list, download, delete, and what the storage
holds afterwards, on the file system and on an S3-compatible store (DESIGN §6)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from companies.models import ActivityEvent
from issues.models import Attachment, Issue
from tests import factories
from tests.wire import stored as stored_pk
from tests.wire import wire

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "Not found", "code": "not_found"}
UNKNOWN_ATTACHMENT = "att_00000000000000000000000000"
# A real 1x1 PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
TEXT = b"Build log\nstep 1: ok\nstep 2: ok\n"
DEFAULT_TYPES = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
    "application/zip",
]


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def stored(filesystem_storage):
    """Every test stores into its own directory; round trips switch backends themselves."""
    return filesystem_storage


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


@pytest.fixture
def colleague_client(company):
    """Another agent of the same company."""
    colleague = factories.AgentFactory(company=company, name="Colleague")
    client = APIClient()
    token = factories.AgentApiKeyFactory(agent=colleague).token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def upload_url(issue, company_id: str | None = None) -> str:
    return f"/api/companies/{company_id or issue.company_id}/issues/{issue.pk}/attachments"


def upload(client, issue, data: bytes = TEXT, name="build.txt", content_type="text/plain", **extra):
    file = SimpleUploadedFile(name, data, content_type=content_type)
    return client.post(upload_url(issue), {"file": file, **extra}, format="multipart")


def content(client, attachment_id: str):
    return client.get(f"/api/attachments/{attachment_id}/content")


def body_of(response) -> bytes:
    """The streamed file, read to the end (the test client then closes the response and its
    file handle; closing it again would fire request_finished and drop the test's connection)."""
    return b"".join(response.streaming_content)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def activity(issue) -> list[str]:
    return list(
        ActivityEvent.objects.filter(issue_id=issue.pk)
        .order_by("created_at")
        .values_list("action", flat=True)
    )


# -- upload ----------------------------------------------------------------------------------


def test_board_upload_is_201_with_the_file_facts_and_stores_the_bytes(
    board, board_user, company, issue, stored
):
    response = upload(board, issue)

    assert response.status_code == 201, response.json()
    body = response.json()
    attachment = Attachment.objects.get(pk=stored_pk(body["id"], Attachment))
    assert body == {
        "id": wire(attachment),
        "companyId": wire(company),
        "issueId": wire(issue),
        "issueCommentId": None,
        "name": "build.txt",
        "contentType": "text/plain",
        "byteSize": len(TEXT),
        "sha256": sha256(TEXT),
        "contentPath": f"/api/attachments/{wire(attachment)}/content",
        "createdByAgentId": None,
        "createdByUserId": wire(board_user),
        "createdAt": body["createdAt"],
    }
    name = f"attachments/{company.pk}/{issue.pk}/{attachment.pk}/build.txt"
    assert attachment.file.name == name
    assert (attachment.byte_size, attachment.sha256) == (len(TEXT), sha256(TEXT))
    assert stored.names() == {name}
    assert stored.read(name) == TEXT
    row = ActivityEvent.objects.get(issue_id=issue.pk)
    assert (row.action, row.entity_type, row.entity_id) == (
        "attachment.created",
        "attachment",
        attachment.pk,
    )
    assert row.details == {
        "name": "build.txt",
        "contentType": "text/plain",
        "byteSize": len(TEXT),
        "sha256": sha256(TEXT),
    }


def test_upload_addresses_the_issue_by_identifier(board, issue):
    file = SimpleUploadedFile("a.txt", TEXT, content_type="text/plain")

    response = board.post(
        f"/api/companies/{issue.company_id}/issues/{issue.identifier}/attachments",
        {"file": file},
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["issueId"] == wire(issue)


def test_upload_can_belong_to_a_comment_of_the_issue(board, issue):
    comment = factories.CommentFactory(issue=issue)

    response = upload(board, issue, issueCommentId=comment.pk)

    assert response.status_code == 201, response.json()
    assert response.json()["issueCommentId"] == wire(comment)
    assert Attachment.objects.get().comment_id == comment.pk


def test_upload_naming_a_comment_of_another_issue_is_400_and_stores_nothing(
    board, company, issue, stored
):
    elsewhere = factories.CommentFactory(issue=factories.IssueFactory(company=company))

    response = upload(board, issue, issueCommentId=elsewhere.pk)

    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["code"]) == ("Validation failed", "validation_error")
    assert set(body["details"]) == {"issueCommentId"}
    assert not Attachment.objects.exists()
    assert stored.names() == set()
    assert activity(issue) == []


def test_upload_without_a_file_is_400(board, issue, stored):
    response = board.post(upload_url(issue), {}, format="multipart")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert set(response.json()["details"]) == {"file"}
    assert not Attachment.objects.exists()
    assert stored.names() == set()


def test_upload_at_exactly_the_size_limit_is_accepted(board, issue, settings):
    settings.PAPERCLIP_ATTACHMENT_MAX_BYTES = 16

    response = upload(board, issue, b"x" * 16)

    assert response.status_code == 201, response.json()
    assert response.json()["byteSize"] == 16


def test_upload_over_the_size_limit_is_422_too_large(board, issue, settings, stored):
    settings.PAPERCLIP_ATTACHMENT_MAX_BYTES = 16

    response = upload(board, issue, b"x" * 17)

    assert response.status_code == 422
    assert response.json() == {
        "error": "The file is larger than 16 bytes",
        "code": "attachment_too_large",
        "details": {"byteSize": 17, "maxBytes": 16},
    }
    assert not Attachment.objects.exists()
    assert stored.names() == set()
    assert activity(issue) == []


def test_empty_upload_is_422_empty(board, issue, stored):
    response = upload(board, issue, b"")

    assert response.status_code == 422
    assert response.json() == {"error": "The file is empty", "code": "attachment_empty"}
    assert not Attachment.objects.exists()
    assert stored.names() == set()


@pytest.mark.parametrize(
    ("name", "content_type", "refused"),
    [
        ("page.html", "text/html", "text/html"),
        ("page.html", "text/plain", "text/html"),  # the name gives it away
        ("logo.svg", "image/svg+xml", "image/svg+xml"),
        ("payload.bin", "application/octet-stream", "application/octet-stream"),
    ],
    ids=["html", "html-declared-as-text", "svg", "binary"],
)
def test_upload_of_a_type_not_allowed_is_422_type_refused(
    board, issue, stored, name, content_type, refused
):
    response = upload(board, issue, b"<html><script>alert(1)</script></html>", name, content_type)

    assert response.status_code == 422
    assert response.json() == {
        "error": f"Files of type {refused} are not accepted",
        "code": "attachment_type_refused",
        "details": {"contentType": refused, "allowed": sorted(DEFAULT_TYPES)},
    }
    assert not Attachment.objects.exists()
    assert stored.names() == set()
    assert activity(issue) == []


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\eve\\secrets.txt", "secrets.txt"),
        ("my report (final) v2?.txt", "my_report_final_v2.txt"),
        ('quote"and<angle>.txt', "quoteandangle.txt"),
    ],
    ids=["posix-path", "windows-path", "spaces-and-punctuation", "markup"],
)
def test_file_name_is_stored_under_a_safe_name(board, company, issue, stored, sent, kept):
    response = upload(board, issue, name=sent)

    assert response.status_code == 201, response.json()
    assert response.json()["name"] == kept
    attachment = Attachment.objects.get()
    assert attachment.original_name == kept
    assert stored.names() == {f"attachments/{company.pk}/{issue.pk}/{attachment.pk}/{kept}"}


def test_file_name_of_only_odd_characters_is_stored_under_a_fallback_name(
    board, company, issue, stored
):
    # Nothing of "★★★" survives cleaning; the upload must still get a safe name, not fail.
    response = upload(board, issue, name="★★★")

    assert response.status_code == 201, response.content
    name = response.json()["name"]
    assert name
    assert all(ch.isalnum() or ch in "._-" for ch in name)
    attachment = Attachment.objects.get()
    assert stored.names() == {f"attachments/{company.pk}/{issue.pk}/{attachment.pk}/{name}"}


def test_agent_upload_is_201_and_names_the_agent(agent_client, agent, issue):
    response = upload(agent_client, issue)

    assert response.status_code == 201, response.json()
    assert (response.json()["createdByAgentId"], response.json()["createdByUserId"]) == (
        wire(agent),
        None,
    )


# -- list and download -----------------------------------------------------------------------


def test_list_answers_the_issues_attachments_in_upload_order(
    board, company, issue, django_assert_num_queries
):
    first = upload(board, issue, name="first.txt").json()
    second = upload(board, issue, PNG, "second.png", "image/png").json()
    upload(board, factories.IssueFactory(company=company), name="elsewhere.txt")

    # The request's savepoint and its release (one transaction per request), the board token
    # with its user, the user's memberships, the issue, and the attachments (one query for all).
    with django_assert_num_queries(6):
        response = board.get(f"/api/issues/{issue.pk}/attachments")

    assert response.status_code == 200
    assert response.json() == [first, second]


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [("build.txt", TEXT, "text/plain"), ("pixel.png", PNG, "image/png")],
    ids=["text", "png"],
)
def test_content_is_the_exact_bytes_shown_inline(board, issue, name, data, content_type):
    attachment_id = upload(board, issue, data, name, content_type).json()["id"]

    response = content(board, attachment_id)

    assert response.status_code == 200
    assert body_of(response) == data
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == f'inline; filename="{name}"'


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("page.html", "text/html"), ("logo.svg", "image/svg+xml")],
    ids=["html", "svg"],
)
def test_html_and_svg_allowed_by_an_operator_are_served_as_downloads(
    board, issue, settings, name, content_type
):
    settings.PAPERCLIP_ATTACHMENT_TYPES = [*DEFAULT_TYPES, "text/html", "image/svg+xml"]
    data = b"<svg onload='alert(1)'><script>alert(2)</script></svg>"
    created = upload(board, issue, data, name, content_type)
    assert created.status_code == 201, created.json()
    assert created.json()["contentType"] == content_type

    response = content(board, created.json()["id"])

    assert response.status_code == 200
    assert body_of(response) == data
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["X-Content-Type-Options"] == "nosniff"


def test_any_agent_of_the_company_may_download(board, colleague_client, issue):
    attachment_id = upload(board, issue).json()["id"]

    response = content(colleague_client, attachment_id)

    assert response.status_code == 200
    assert body_of(response) == TEXT


def test_content_of_an_unknown_attachment_is_404(board, company):
    response = board.get(f"/api/attachments/{UNKNOWN_ATTACHMENT}/content")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_list_of_an_unknown_issue_is_404(board, company):
    response = board.get("/api/issues/iss_00000000000000000000000000/attachments")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# -- delete ----------------------------------------------------------------------------------


def test_board_delete_is_204_and_removes_the_object_only_after_commit(
    board, issue, stored, django_capture_on_commit_callbacks
):
    attachment_id = upload(board, issue).json()["id"]
    [name] = stored.names()

    with django_capture_on_commit_callbacks() as callbacks:
        response = board.delete(f"/api/attachments/{attachment_id}")
        assert stored.names() == {name}  # the transaction has not committed yet

    assert response.status_code == 204
    assert not Attachment.objects.filter(pk=stored_pk(attachment_id, Attachment)).exists()
    for callback in callbacks:
        callback()
    assert stored.names() == set()
    assert content(board, attachment_id).status_code == 404
    assert board.get(f"/api/issues/{issue.pk}/attachments").json() == []
    assert activity(issue) == ["attachment.created", "attachment.deleted"]


def test_deleting_the_issue_removes_its_stored_objects_after_commit(
    board, company, issue, stored, django_capture_on_commit_callbacks
):
    upload(board, issue, name="one.txt")
    upload(board, issue, PNG, "two.png", "image/png")
    other_issue = factories.IssueFactory(company=company)
    kept = upload(board, other_issue, name="kept.txt").json()

    with django_capture_on_commit_callbacks(execute=True):
        response = board.delete(f"/api/issues/{issue.pk}")

    assert response.status_code == 204
    assert not Issue.objects.filter(pk=issue.pk).exists()
    kept_pk = stored_pk(kept["id"], Attachment)
    assert list(Attachment.objects.values_list("pk", flat=True)) == [kept_pk]
    assert stored.names() == {f"attachments/{company.pk}/{other_issue.pk}/{kept_pk}/kept.txt"}


def test_agent_may_delete_its_own_upload(
    agent_client, issue, stored, django_capture_on_commit_callbacks
):
    attachment_id = upload(agent_client, issue).json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.delete(f"/api/attachments/{attachment_id}")

    assert response.status_code == 204
    assert not Attachment.objects.exists()
    assert stored.names() == set()


@pytest.mark.parametrize("uploader", ["board", "colleague"])
def test_agent_cannot_delete_someone_elses_upload(
    agent_client, board, colleague_client, issue, stored, uploader
):
    attachment_id = upload(board if uploader == "board" else colleague_client, issue).json()["id"]

    response = agent_client.delete(f"/api/attachments/{attachment_id}")

    assert response.status_code == 403
    assert response.json() == {
        "error": "Only the uploader or the board may delete an attachment",
        "code": "forbidden",
    }
    assert Attachment.objects.filter(pk=stored_pk(attachment_id, Attachment)).exists()
    assert len(stored.names()) == 1
    assert "attachment.deleted" not in activity(issue)


def test_board_may_delete_an_agents_upload(
    agent_client, board, issue, stored, django_capture_on_commit_callbacks
):
    attachment_id = upload(agent_client, issue).json()["id"]

    with django_capture_on_commit_callbacks(execute=True):
        response = board.delete(f"/api/attachments/{attachment_id}")

    assert response.status_code == 204
    assert not Attachment.objects.exists()
    assert stored.names() == set()


def test_delete_of_an_unknown_attachment_is_404(board, company):
    response = board.delete(f"/api/attachments/{UNKNOWN_ATTACHMENT}")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND


# -- another company sees nothing ------------------------------------------------------------


@pytest.mark.parametrize("caller", ["other_client", "other_board"])
def test_another_company_gets_404_on_content_list_and_delete(board, issue, stored, request, caller):
    client = request.getfixturevalue(caller)
    attachment_id = upload(board, issue).json()["id"]

    responses = [
        content(client, attachment_id),
        client.get(f"/api/issues/{issue.pk}/attachments"),
        client.delete(f"/api/attachments/{attachment_id}"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    assert all(r.json() == NOT_FOUND for r in responses)
    assert Attachment.objects.filter(pk=stored_pk(attachment_id, Attachment)).exists()
    assert len(stored.names()) == 1


@pytest.mark.parametrize("caller", ["other_client", "other_board"])
def test_another_company_cannot_upload_to_the_issue(issue, stored, request, caller):
    response = upload(request.getfixturevalue(caller), issue)

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not Attachment.objects.exists()
    assert stored.names() == set()


def test_upload_route_naming_another_company_is_404(board, issue, other_company, stored):
    file = SimpleUploadedFile("a.txt", TEXT, content_type="text/plain")

    response = board.post(upload_url(issue, other_company.pk), {"file": file}, format="multipart")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not Attachment.objects.exists()
    assert stored.names() == set()


def test_upload_to_an_issue_of_another_company_under_ones_own_company_is_404(
    board, company, other_company, stored
):
    foreign = factories.IssueFactory(company=other_company)
    file = SimpleUploadedFile("a.txt", TEXT, content_type="text/plain")

    response = board.post(upload_url(foreign, company.pk), {"file": file}, format="multipart")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert not Attachment.objects.exists()
    assert stored.names() == set()


# -- on every storage backend ----------------------------------------------------------------


def test_round_trip_upload_download_delete_leaves_nothing_behind(
    board, company, issue, storage_backend, django_capture_on_commit_callbacks
):
    created = upload(board, issue, PNG, "pixel.png", "image/png")
    assert created.status_code == 201, created.json()
    attachment_id = created.json()["id"]
    name = f"attachments/{company.pk}/{issue.pk}/{stored_pk(attachment_id, Attachment)}/pixel.png"
    assert storage_backend.names() == {name}
    assert storage_backend.read(name) == PNG

    downloaded = content(board, attachment_id)
    assert downloaded.status_code == 200
    assert body_of(downloaded) == PNG
    assert downloaded["Content-Type"] == "image/png"

    with django_capture_on_commit_callbacks(execute=True):
        deleted = board.delete(f"/api/attachments/{attachment_id}")

    assert deleted.status_code == 204
    assert storage_backend.names() == set()
    assert content(board, attachment_id).status_code == 404


def test_round_trip_of_a_file_larger_than_the_in_memory_threshold(
    board, issue, settings, storage_backend, django_capture_on_commit_callbacks
):
    # Over FILE_UPLOAD_MAX_MEMORY_SIZE the upload is streamed through a temporary file.
    size = settings.FILE_UPLOAD_MAX_MEMORY_SIZE + 512 * 1024
    settings.PAPERCLIP_ATTACHMENT_MAX_BYTES = 2 * size
    data = bytes(range(256)) * (size // 256)

    created = upload(board, issue, data, "large.csv", "text/csv")

    assert created.status_code == 201, created.json()
    assert (created.json()["byteSize"], created.json()["sha256"]) == (len(data), sha256(data))
    [name] = storage_backend.names()
    assert storage_backend.read(name) == data
    assert body_of(content(board, created.json()["id"])) == data

    with django_capture_on_commit_callbacks(execute=True):
        assert board.delete(f"/api/attachments/{created.json()['id']}").status_code == 204
    assert storage_backend.names() == set()


def test_deleting_the_issue_removes_stored_objects_on_every_backend(
    board, issue, storage_backend, django_capture_on_commit_callbacks
):
    upload(board, issue, name="one.txt")
    upload(board, issue, PNG, "two.png", "image/png")
    assert len(storage_backend.names()) == 2

    with django_capture_on_commit_callbacks(execute=True):
        assert board.delete(f"/api/issues/{issue.pk}").status_code == 204

    assert storage_backend.names() == set()


@pytest.mark.parametrize("accept", ["image/png", "text/html,application/xhtml+xml,*/*;q=0.8"])
def test_download_answers_the_file_whatever_the_browser_accepts(board, issue, accept):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
    attachment_id = upload(board, issue, png, "shot.png", "image/png").json()["id"]

    response = board.get(f"/api/attachments/{attachment_id}/content", HTTP_ACCEPT=accept)

    assert response.status_code == 200
    assert (response["Content-Type"], body_of(response)) == ("image/png", png)


def test_a_missing_download_is_a_json_404_even_when_the_browser_wants_an_image(board):
    response = board.get(
        "/api/attachments/att_00000000000000000000000000/content", HTTP_ACCEPT="image/png"
    )

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}
