"""Run tokens are signed with a key derived for them alone, never SECRET_KEY itself: a token
forged with SECRET_KEY (or any other key) from an agent's and a run's ids is refused. Tokens
signed before a key rotation stay valid while the old key is in SECRET_KEY_FALLBACKS."""

from __future__ import annotations

import jwt
import pytest

from agents.models import HeartbeatRun
from agents.runs import RUN_TOKEN_AUDIENCE
from tests.conftest import client_for
from tests.wire import stored, wire

pytestmark = pytest.mark.django_db


@pytest.fixture
def woken(board, agent):
    """The board wakes the agent: the answer carries the run and its token."""
    response = board.post(f"/api/agents/{agent.pk}/wakeup", {}, format="json")
    assert response.status_code == 202, response.json()
    return response.json()


def test_run_token_from_a_wakeup_authenticates_as_its_agent(woken, agent):
    response = client_for(woken["runToken"]).get("/api/agents/me")

    assert response.status_code == 200
    assert response.json()["id"] == wire(agent)


def test_run_token_is_not_signed_with_secret_key_itself(woken, settings):
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            woken["runToken"],
            settings.SECRET_KEY,
            algorithms=["HS256"],
            audience=RUN_TOKEN_AUDIENCE,
        )


def test_run_token_forged_with_secret_key_from_known_ids_is_401(woken, agent, settings):
    claims = jwt.decode(woken["runToken"], options={"verify_signature": False})
    assert (claims["sub"], claims["run"]) == (agent.pk, stored(woken["id"], HeartbeatRun))
    forged = jwt.encode(claims, settings.SECRET_KEY, algorithm="HS256")

    response = client_for(forged).get("/api/agents/me")

    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized", "code": "unauthorized"}


def test_run_token_from_before_a_key_rotation_works_while_the_old_key_is_a_fallback(
    woken, settings
):
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "rotated-" + "r" * 60
    settings.SECRET_KEY_FALLBACKS = [old_key]

    assert client_for(woken["runToken"]).get("/api/agents/me").status_code == 200

    settings.SECRET_KEY_FALLBACKS = []
    assert client_for(woken["runToken"]).get("/api/agents/me").status_code == 401
