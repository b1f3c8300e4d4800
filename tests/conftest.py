"""Personas and clients shared by every test.

`company` with a board owner (`board_user`) and an agent (`agent`); `other_company` with its own
agent, who must see nothing of `company`. Clients authenticate the way real callers do: agents
with `Bearer pcp_...`, the board with `Bearer pcb_...`.
"""

from __future__ import annotations

import os
from datetime import UTC
from pathlib import Path

import pytest
from django.db import connection
from rest_framework.test import APIClient

from agents.authentication import forget_keys
from paperclip.api.auth_failures import forget_blocks
from tests import factories


def pytest_collection_modifyitems(config, items):
    """Skip PostgreSQL-only tests on SQLite, unless CI demands PostgreSQL (then fail loudly)."""
    if connection.vendor == "postgresql":
        return
    if os.environ.get("PAPERCLIP_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError(
            f"PAPERCLIP_REQUIRE_POSTGRES=1 but the database is {connection.vendor}"
        )
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Real hashers are slow on purpose; tests only need passwords to check."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def fresh_key_cache():
    """What a process trusts about agent keys lives across requests (agents.authentication):
    each test starts with none, as a fresh process would, since its rows are rolled back."""
    forget_keys()


@pytest.fixture(autouse=True)
def no_auth_failures_blocked():
    """Which addresses are over their failure limit is kept across requests
    (paperclip.api.auth_failures), and every test client is 127.0.0.1: each test starts with
    nothing blocked, as its counter rows start empty."""
    forget_blocks(nothing_blocked=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    """A fresh filesystem storage per test, where files (attachments, run logs: a worker's too)
    are saved and read: no test writes into the checkout's media/, nor reads what another left."""
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root


@pytest.fixture(autouse=True)
def private_targets_allowed(settings):
    """Wakes go to receivers on 127.0.0.1, as under `make run` (DESIGN §9); the tests of the
    target rules turn this off themselves."""
    settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = True


def iso(moment) -> str:
    """A datetime as the API renders it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def client_for(token: str, run_id: str | None = None) -> APIClient:
    client = APIClient()
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    if run_id:
        headers["HTTP_X_PAPERCLIP_RUN_ID"] = run_id
    client.credentials(**headers)
    return client


@pytest.fixture
def company(db):
    return factories.CompanyFactory(name="Acme Robotics", issue_prefix="ACM")


@pytest.fixture
def board_user(company):
    membership = factories.MembershipFactory(company=company, user__username="alice")
    return membership.user


@pytest.fixture
def board(board_user):
    """An API client for the company's board owner (personal token)."""
    token = factories.BoardTokenFactory(user=board_user)
    return client_for(token.token)


@pytest.fixture
def admin_user(db):
    return factories.UserFactory(username="root", is_superuser=True)


@pytest.fixture
def admin_client(admin_user):
    """The instance admin (superuser), by token."""
    return client_for(factories.BoardTokenFactory(user=admin_user).token)


@pytest.fixture
def agent(company):
    return factories.AgentFactory(company=company, name="Builder")


@pytest.fixture
def agent_client(agent):
    return client_for(factories.AgentApiKeyFactory(agent=agent).token)


@pytest.fixture
def other_company(db):
    return factories.CompanyFactory(name="Globex", issue_prefix="GLO")


@pytest.fixture
def other_agent(other_company):
    return factories.AgentFactory(company=other_company, name="Outsider")


@pytest.fixture
def other_client(other_agent):
    """An agent of another company: must see nothing of `company`."""
    return client_for(factories.AgentApiKeyFactory(agent=other_agent).token)


@pytest.fixture
def other_board(other_company):
    """A board owner of `other_company`: must see nothing of `company`."""
    user = factories.MembershipFactory(company=other_company, user__username="mallory").user
    return client_for(factories.BoardTokenFactory(user=user).token)


@pytest.fixture
def anon():
    return APIClient()
