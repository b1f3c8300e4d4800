"""An issue with no project or goal answers `"project": null, "goal": null`, and the schema at
/api/openapi.json says so (make fuzz: response_schema_conformance on GET /api/issues/{id})."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests import factories

pytestmark = pytest.mark.django_db


def test_issue_detail_schema_declares_project_and_goal_nullable():
    schema = APIClient().get("/api/openapi.json").json()
    properties = schema["components"]["schemas"]["IssueDetail"]["properties"]

    assert properties["project"] == {
        "allOf": [{"$ref": "#/components/schemas/ProjectSummary"}],
        "readOnly": True,
        "nullable": True,
    }
    assert properties["goal"] == {
        "allOf": [{"$ref": "#/components/schemas/GoalSummary"}],
        "readOnly": True,
        "nullable": True,
    }


def test_issue_without_project_or_goal_answers_null_for_both(board, company):
    issue = factories.IssueFactory(company=company)

    response = board.get(f"/api/issues/{issue.pk}")

    assert response.status_code == 200
    assert response.json()["project"] is None
    assert response.json()["goal"] is None
