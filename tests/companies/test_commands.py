"""Management commands: `create_board_token` prints one working token; `bootstrap_demo` is
idempotent and keeps handing out the same working demo credentials."""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.utils import timezone

from agents.authentication import AgentKeyAuthentication
from agents.models import Agent, AgentApiKey
from companies.authentication import BoardTokenAuthentication
from companies.models import BoardToken, Company, Membership, User, hash_token
from tests.wire import wire

pytestmark = pytest.mark.django_db

AGENT_KEY = re.compile(r"pcp_[0-9a-f]{48}")
BOARD_TOKEN = re.compile(r"pcb_[0-9a-f]{48}")
PASSWORD = re.compile(r"password: (\S+)")


def authenticate(auth_class, token: str):
    """What the API's authentication class makes of `Authorization: Bearer <token>`."""
    request = RequestFactory().get("/api/", HTTP_AUTHORIZATION=f"Bearer {token}")
    return auth_class().authenticate(request)


def distinct(matches: list[str]) -> list[str]:
    return list(dict.fromkeys(matches))


# -- create_board_token ---------------------------------------------------------------------


def run_create_board_token(*args: str) -> str:
    out = StringIO()
    call_command("create_board_token", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_board_token_prints_only_a_token_that_authenticates():
    alice = User.objects.create_user(username="alice", password="x")

    output = run_create_board_token("alice")

    assert output.endswith("\n")
    [token] = output.splitlines()
    assert BOARD_TOKEN.fullmatch(token)
    board_token = BoardToken.objects.get(token_hash=hash_token(token))
    assert (board_token.user, board_token.name, board_token.revoked_at) == (alice, "cli", None)
    user, actor = authenticate(BoardTokenAuthentication, token)
    assert (user, actor.type, actor.id) == (alice, "user", alice.pk)


def test_create_board_token_stores_the_given_name_and_prints_a_new_token_each_time():
    User.objects.create_user(username="alice")

    first = run_create_board_token("alice", "--name", "laptop").strip()
    second = run_create_board_token("alice", "--name", "laptop").strip()

    assert first != second
    assert list(BoardToken.objects.values_list("name", flat=True)) == ["laptop", "laptop"]


def test_create_board_token_for_an_unknown_user_is_a_command_error():
    with pytest.raises(CommandError, match="nobody"):
        run_create_board_token("nobody")

    assert not BoardToken.objects.exists()


def test_create_board_token_for_an_inactive_user_is_refused():
    User.objects.create_user(username="gone", is_active=False)

    with pytest.raises(CommandError, match="inactive"):
        run_create_board_token("gone")

    assert not BoardToken.objects.exists()


# -- bootstrap_demo -------------------------------------------------------------------------


@pytest.fixture
def credentials(settings, tmp_path):
    """Keep the demo credentials file out of the project's var/."""
    path = tmp_path / "demo-credentials.json"
    settings.PAPERCLIP_DEMO_CREDENTIALS = str(path)
    return path


def bootstrap(*args: str) -> str:
    out = StringIO()
    call_command("bootstrap_demo", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_bootstrap_demo_twice_creates_everything_once_and_prints_the_same_working_keys(
    credentials,
):
    first = bootstrap()
    second = bootstrap()

    assert Company.objects.count() == 1
    assert list(User.objects.values_list("username", flat=True)) == ["board"]
    assert Agent.objects.count() == 2
    assert AgentApiKey.objects.count() == 2
    assert BoardToken.objects.count() == 1
    keys = distinct(AGENT_KEY.findall(first))
    assert len(keys) == 2
    assert distinct(AGENT_KEY.findall(second)) == keys
    assert {authenticate(AgentKeyAuthentication, key)[0].name for key in keys} == {
        "CEO",
        "Engineer",
    }
    [token] = distinct(BOARD_TOKEN.findall(first))
    assert distinct(BOARD_TOKEN.findall(second)) == [token]
    assert authenticate(BoardTokenAuthentication, token)[0].username == "board"
    [password] = PASSWORD.findall(first)
    assert PASSWORD.findall(second) == [password]
    assert User.objects.get(username="board").check_password(password)


def test_bootstrap_demo_builds_the_demo_company_and_its_org_chart(credentials):
    output = bootstrap()

    board = User.objects.get(username="board")
    assert (board.is_superuser, board.is_staff, board.is_active) == (True, True, True)
    company = Company.objects.get()
    assert (company.name, company.issue_prefix) == ("Demo Company", "DEM")
    assert Membership.objects.get(user=board).company == company
    assert Membership.objects.get(user=board).role == Membership.Role.OWNER
    ceo = Agent.objects.get(name="CEO")
    engineer = Agent.objects.get(name="Engineer")
    assert (ceo.company, ceo.role, ceo.reports_to) == (company, "ceo", None)
    assert (engineer.company, engineer.role, engineer.reports_to) == (company, "engineer", ceo)
    assert "http://127.0.0.1:3100/admin/" in output
    assert "username: board" in output
    assert f"id {wire(company)}  prefix DEM" in output  # as /api writes it
    assert f"CEO  id {wire(ceo)}" in output
    assert f"Engineer  id {wire(engineer)}" in output
    key = AGENT_KEY.search(output).group()
    assert f"curl -H 'Authorization: Bearer {key}' http://127.0.0.1:3100/api/agents/me" in output
    token = BOARD_TOKEN.search(output).group()
    assert f"curl -H 'Authorization: Bearer {token}' http://127.0.0.1:3100/api/companies" in output
    assert (
        "scripts/paperclip-cli context set --api-base http://127.0.0.1:3100 "
        f"--company-id {wire(company)} --api-key-env-var-name PAPERCLIP_API_KEY --use"
    ) in output
    assert f"export PAPERCLIP_API_KEY={token}" in output


def test_bootstrap_demo_keeps_the_plain_credentials_in_the_configured_file(credentials):
    output = bootstrap()

    saved = json.loads(credentials.read_text())
    assert saved["board"]["username"] == "board"
    assert PASSWORD.findall(output) == [saved["board"]["password"]]
    assert saved["board"]["token"] in output
    assert [agent["name"] for agent in saved["agents"]] == ["CEO", "Engineer"]
    assert distinct(AGENT_KEY.findall(output)) == [agent["apiKey"] for agent in saved["agents"]]
    assert credentials.stat().st_mode & 0o077 == 0  # private to its owner


def test_bootstrap_demo_regenerates_only_a_revoked_key(credentials):
    first = bootstrap()
    ceo_key, engineer_key = distinct(AGENT_KEY.findall(first))
    AgentApiKey.objects.filter(token_hash=hash_token(ceo_key)).update(revoked_at=timezone.now())

    second = bootstrap()

    new_ceo_key, same_engineer_key = distinct(AGENT_KEY.findall(second))
    assert new_ceo_key != ceo_key
    assert same_engineer_key == engineer_key
    assert authenticate(AgentKeyAuthentication, new_ceo_key)[0].name == "CEO"
    assert PASSWORD.findall(second) == PASSWORD.findall(first)
    assert BOARD_TOKEN.findall(second) == BOARD_TOKEN.findall(first)
    assert AgentApiKey.objects.count() == 3


def test_bootstrap_demo_sets_a_new_password_when_the_saved_one_stopped_working(credentials):
    first = bootstrap()
    board = User.objects.get(username="board")
    board.set_password("changed-by-hand")
    board.save()

    second = bootstrap()

    [old_password] = PASSWORD.findall(first)
    [new_password] = PASSWORD.findall(second)
    assert new_password != old_password
    board.refresh_from_db()
    assert board.check_password(new_password)
    assert distinct(AGENT_KEY.findall(second)) == distinct(AGENT_KEY.findall(first))


def test_bootstrap_demo_without_its_file_reuses_the_objects_and_issues_new_credentials(
    credentials,
):
    first = bootstrap()
    credentials.unlink()

    second = bootstrap()

    assert (Company.objects.count(), Agent.objects.count(), User.objects.count()) == (1, 2, 1)
    new_keys = distinct(AGENT_KEY.findall(second))
    assert set(new_keys).isdisjoint(AGENT_KEY.findall(first))
    assert all(authenticate(AgentKeyAuthentication, key) for key in new_keys)
    assert User.objects.get().check_password(PASSWORD.findall(second)[0])


def test_bootstrap_demo_at_verbosity_0_prints_nothing(credentials):
    assert bootstrap("--verbosity", "0") == ""
    assert Agent.objects.count() == 2


def test_bootstrap_demo_dry_run_lists_the_changes_and_makes_none(credentials):
    output = bootstrap("--dry-run")

    assert "created company 'Demo Company'" in output
    assert not AGENT_KEY.search(output)
    assert not Company.objects.exists()
    assert not User.objects.exists()
    assert not credentials.exists()


def test_bootstrap_demo_credentials_option_wins_over_the_setting(credentials, tmp_path):
    elsewhere = tmp_path / "elsewhere" / "creds.json"

    output = bootstrap("--credentials", str(elsewhere))

    assert not credentials.exists()
    assert json.loads(elsewhere.read_text())["board"]["token"] in output
