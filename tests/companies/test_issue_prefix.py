"""`POST /api/companies`: every company gets a unique issue prefix that fits its column, however
many companies share a name's first letters (DESIGN §5: `ZED`, `ZED2`, `ZED3`, ...)."""

from __future__ import annotations

import pytest

from companies.models import Company
from companies.services import derive_issue_prefix
from tests import factories

pytestmark = pytest.mark.django_db


def test_twenty_companies_named_zed_get_zed_then_numbers(admin_client):
    answers = [
        admin_client.post("/api/companies", {"name": f"Zed {n}"}, format="json")
        for n in range(1, 21)
    ]

    assert [a.status_code for a in answers] == [201] * 20
    expected = ["ZED"] + [f"ZED{n}" for n in range(2, 21)]
    assert [a.json()["issuePrefix"] for a in answers] == expected
    stored = dict(Company.objects.values_list("name", "issue_prefix"))
    assert stored == {f"Zed {n}": prefix for n, prefix in zip(range(1, 21), expected, strict=True)}


def test_the_number_follows_the_highest_taken_and_ignores_other_shapes(admin_client):
    for prefix in ("ZED", "ZED7", "ZEDA", "ZEDAA", "ZED07"):
        factories.CompanyFactory(name=f"Old {prefix}", issue_prefix=prefix)

    response = admin_client.post("/api/companies", {"name": "Zeddy"}, format="json")

    assert (response.status_code, response.json()["issuePrefix"]) == (201, "ZED8")
    assert Company.objects.get(name="Zeddy").issue_prefix == "ZED8"


def test_a_prefix_stays_within_the_column_whatever_the_count(db):
    factories.CompanyFactory(name="Zed", issue_prefix="ZED")
    factories.CompanyFactory(name="Zed many", issue_prefix="ZED" + "9" * 12)

    prefix = derive_issue_prefix("Zed again")

    assert prefix == "ZED1" + "0" * 12
    assert len(prefix) <= Company._meta.get_field("issue_prefix").max_length


def test_no_prefix_left_is_a_409_not_a_500(admin_client):
    factories.CompanyFactory(name="Zed full", issue_prefix="ZED" + "9" * 13)

    response = admin_client.post("/api/companies", {"name": "Zed"}, format="json")

    assert response.status_code == 409, response.content
    assert response.json()["code"] == "issue_prefix_exhausted"
    assert not Company.objects.filter(name="Zed").exists()
