"""`GET /` is a small front door, not a 404: it links the board, the API docs, the schema and
health, every link answers, and it loads nothing from elsewhere (no CDN)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

LINKS = ["/admin/", "/api/docs/", "/api/openapi.json", "/api/health"]


def test_root_is_a_page_linking_the_board_docs_schema_and_health():
    response = Client().get("/")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    hrefs = re.findall(r'href="([^"]*)"', response.content.decode())
    assert hrefs == LINKS


def test_root_page_loads_nothing_from_another_origin():
    html = Client().get("/").content.decode()

    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html


@pytest.mark.parametrize(("path", "status"), [("/admin/", 302), *((p, 200) for p in LINKS[1:])])
def test_every_link_on_the_root_page_answers(path, status):
    response = Client().get(path)

    assert response.status_code == status
    if status == 302:
        assert response["Location"] == "/admin/login/?next=/admin/"


def test_root_page_answers_head_and_refuses_writes():
    client = Client()

    assert client.head("/").status_code == 200
    assert client.post("/").status_code == 405
