"""Unknown `/api/*` routes answer 404 JSON for every method, never an HTML page."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.mark.parametrize("method", ["get", "post", "put", "patch", "delete"])
def test_unknown_api_route_is_404_json_for_every_method(method, db):
    client = APIClient(enforce_csrf_checks=True)

    response = getattr(client, method)("/api/companies//issues/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"error": "Not found", "code": "not_found"}
