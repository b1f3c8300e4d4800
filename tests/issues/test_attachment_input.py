"""What an upload may be (DESIGN §6): an empty file is refused with 422 `attachment_empty`, as the
README and the OpenAPI description say; control characters never reach a stored name."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from companies.models import ActivityEvent
from issues.models import Attachment
from issues.storage import safe_file_name
from tests import factories

pytestmark = pytest.mark.django_db

CONTROL_CHARACTERS = [chr(code) for code in range(0x01, 0x20)] + ["\x7f"]


@pytest.fixture(autouse=True)
def stored(filesystem_storage):
    return filesystem_storage


@pytest.fixture
def issue(company):
    return factories.IssueFactory(company=company, status="todo")


def upload_url(issue) -> str:
    return f"/api/companies/{issue.company_id}/issues/{issue.pk}/attachments"


def raw_upload(client, issue, disposition: str, data: bytes, content_type: str = "text/plain"):
    """A multipart body written by hand, as curl or a browser sends it (the test client would
    clean the file name before sending)."""
    boundary = "paperclip-boundary"
    body = (
        (
            f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n"
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return client.generic(
        "POST", upload_url(issue), body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def test_an_empty_upload_is_422_attachment_empty_and_stores_nothing(board, issue, stored):
    response = raw_upload(board, issue, 'name="file"; filename="empty.txt"', b"")

    assert response.status_code == 422, response.content
    assert response.json() == {"error": "The file is empty", "code": "attachment_empty"}
    assert not Attachment.objects.exists()
    assert stored.names() == set()
    assert not ActivityEvent.objects.filter(action="attachment.created").exists()


def test_the_openapi_description_of_the_upload_names_the_empty_file_422(board):
    schema = board.get("/api/openapi.json").json()
    upload = schema["paths"]["/api/companies/{company_pk}/issues/{issue_pk}/attachments"]["post"]

    assert "422 when the file is empty (`attachment_empty`)" in upload["description"]


@pytest.mark.parametrize(
    "character", CONTROL_CHARACTERS, ids=[f"0x{ord(c):02x}" for c in CONTROL_CHARACTERS]
)
def test_control_characters_never_reach_the_stored_name(board, issue, stored, character):
    # RFC 5987 form, so the byte reaches the server as it was sent.
    encoded = "".join(f"%{byte:02X}" for byte in f"re{character}port.txt".encode())
    response = raw_upload(board, issue, f"name=\"file\"; filename*=UTF-8''{encoded}", b"log")

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "report.txt"
    attachment = Attachment.objects.get()
    assert attachment.original_name == "report.txt"
    [name] = stored.names()
    assert name.endswith("/report.txt")
    download = board.get(f"/api/attachments/{attachment.pk}/content")
    assert "report.txt" in download["Content-Disposition"]
    assert b"".join(download.streaming_content) == b"log"


def test_a_name_of_only_control_characters_keeps_its_extension(board, issue):
    file = SimpleUploadedFile("\x01\x1b.txt", b"log", content_type="text/plain")

    response = board.post(upload_url(issue), {"file": file}, format="multipart")

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "file.txt"
    assert Attachment.objects.get().original_name == "file.txt"


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("re\x01port.txt", "report.txt"),
        ("tab\there.txt", "tabhere.txt"),
        ("del\x7f.txt", "del.txt"),
        ("esc\x1b[31m.txt", "esc31m.txt"),
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("nul\x00.txt", "nul.txt"),
        ("c1\x85\x9b.txt", "c1.txt"),
        ("invoice\u202etxt.exe", "invoicetxt.exe"),  # a bidi override hides the real extension
        ("\x01\x02.txt", "file.txt"),
        ("\x05", "file"),
        ("..\\..\\evil.txt", "evil.txt"),
        ("résumé final.pdf", "résumé_final.pdf"),
    ],
)
def test_safe_file_name_drops_control_and_format_characters(name, safe):
    assert safe_file_name(name) == safe
