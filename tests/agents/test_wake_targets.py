"""An `http` agent's wake URL follows the webhook target rules (DESIGN §9): http(s) only; private
and loopback addresses only with `PAPERCLIP_WEBHOOK_ALLOW_PRIVATE`; link-local (cloud metadata)
never. Refused when stored (400 naming `url`) and again at delivery, on the addresses the name
resolves to then: a refused delivery is one failed attempt with nothing sent."""

from __future__ import annotations

import socket

import pytest

from agents.models import Agent, HeartbeatRun, WakeDelivery
from paperclip.targets import TargetRefused, check_target_url
from tests import factories
from tests.agents.receivers import running_receiver
from tests.wire import stored

pytestmark = pytest.mark.django_db

IMMEDIATE_TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
REAL_GETADDRINFO = socket.getaddrinfo

LINK_LOCAL = {
    "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a link-local address; "
    "it is never allowed.",
    "http://[fe80::1]/wake": "fe80::1 is a link-local address; it is never allowed.",
    "http://[::ffff:169.254.169.254]/": "::ffff:a9fe:a9fe is a link-local address; "
    "it is never allowed.",
}
PRIVATE = {
    "http://10.0.0.1/wake": "10.0.0.1",
    "http://127.0.0.1:8080/wake": "127.0.0.1",
    "http://[::1]:8080/wake": "::1",
    "http://localhost:3000/wake": "127.0.0.1",
}


def private_message(address: str) -> str:
    return (
        f"{address} is a private or loopback address "
        "(allowed only with PAPERCLIP_WEBHOOK_ALLOW_PRIVATE=1)."
    )


@pytest.fixture
def private_refused(settings):
    """Production's default: no private or loopback targets."""
    settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = False


@pytest.fixture
def resolving(monkeypatch):
    """`resolving({"agent.example.test": ["169.254.169.254"]})`: DNS answers these names so;
    every other name (and the numeric lookups of a connect) resolves for real."""

    def install(names: dict[str, list[str]]) -> None:
        def fake_getaddrinfo(host, port, *args, **kwargs):
            if host not in names:
                return REAL_GETADDRINFO(host, port, *args, **kwargs)
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
                if ":" in address
                else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                for address in names[host]
            ]

        monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)

    return install


@pytest.fixture
def connections(monkeypatch) -> list:
    """Every address a socket was opened to."""
    opened: list = []
    real = socket.create_connection

    def spy(address, *args, **kwargs):
        opened.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", spy)
    return opened


def hire_http_agent(board, company, url) -> tuple[int, dict]:
    response = board.post(
        f"/api/companies/{company.pk}/agents",
        {"name": "Hooked", "adapterType": "http", "adapterConfig": {"url": url}},
        format="json",
    )
    return response.status_code, response.json()


# -- when the URL is stored ------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "message"), LINK_LOCAL.items())
def test_a_link_local_wake_url_is_400_naming_url(board, company, private_refused, url, message):
    status, body = hire_http_agent(board, company, url)

    assert status == 400, body
    assert body == {
        "error": "Validation failed",
        "code": "validation_error",
        "details": {"adapterConfig": {"url": [message]}},
    }
    assert not Agent.objects.filter(name="Hooked").exists()


@pytest.mark.parametrize(("url", "message"), LINK_LOCAL.items())
def test_a_link_local_wake_url_is_refused_even_when_private_targets_are_allowed(
    board, company, url, message
):
    status, body = hire_http_agent(board, company, url)

    assert (status, body["details"]) == (400, {"adapterConfig": {"url": [message]}})
    assert not Agent.objects.filter(name="Hooked").exists()


@pytest.mark.parametrize(("url", "address"), PRIVATE.items())
def test_a_private_or_loopback_wake_url_is_400_by_default(
    board, company, private_refused, url, address
):
    status, body = hire_http_agent(board, company, url)

    assert (status, body["details"]) == (
        400,
        {"adapterConfig": {"url": [private_message(address)]}},
    )
    assert not Agent.objects.filter(name="Hooked").exists()


@pytest.mark.parametrize("url", PRIVATE)
def test_a_private_or_loopback_wake_url_is_accepted_when_allowed(board, company, url):
    status, body = hire_http_agent(board, company, url)

    assert status == 201, body
    assert Agent.objects.get(name="Hooked").adapter_config == {"url": url}


def test_a_public_wake_url_is_accepted_without_a_dns_lookup(
    board, company, private_refused, monkeypatch
):
    def no_dns(*args, **kwargs):
        raise AssertionError("a stored URL is not resolved")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)

    status, body = hire_http_agent(board, company, "https://agent.example.com/wake")

    assert status == 201, body
    assert Agent.objects.get(name="Hooked").adapter_config == {
        "url": "https://agent.example.com/wake"
    }


def test_patching_an_agent_to_the_metadata_address_is_400_and_changes_nothing(board, company):
    agent = factories.AgentFactory(
        company=company,
        adapter_type=Agent.Adapter.HTTP,
        adapter_config={"url": "https://agent.example.com/wake"},
    )

    response = board.patch(
        f"/api/agents/{agent.pk}",
        {"adapterConfig": {"url": "http://169.254.169.254/latest/meta-data/"}},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert response.json()["details"] == {
        "adapterConfig": {"url": [LINK_LOCAL["http://169.254.169.254/latest/meta-data/"]]}
    }
    agent.refresh_from_db()
    assert agent.adapter_config == {"url": "https://agent.example.com/wake"}


# -- the rule itself (paperclip.targets) ----------------------------------------------------------


def test_a_name_resolving_to_link_local_is_refused_when_resolved(resolving):
    resolving({"metadata.example.test": ["169.254.169.254"]})

    with pytest.raises(TargetRefused) as refused:
        check_target_url("http://metadata.example.test/latest", resolve=True)

    assert refused.value.reason == (
        "metadata.example.test (169.254.169.254) is a link-local address; it is never allowed."
    )
    assert refused.value.details == {"url": [refused.value.reason]}


def test_one_refused_address_among_several_refuses_the_name(resolving):
    resolving({"agent.example.test": ["93.184.215.14", "fe80::1"]})

    with pytest.raises(TargetRefused, match="fe80::1"):
        check_target_url("https://agent.example.test/wake", resolve=True)


def test_a_name_resolving_to_public_addresses_is_a_target_with_those_addresses(resolving):
    resolving({"agent.example.test": ["93.184.215.14"]})

    target = check_target_url("https://agent.example.test:8443/wake?x=1", resolve=True)

    assert (target.scheme, target.host, target.port, target.addresses) == (
        "https",
        "agent.example.test",
        8443,
        ("93.184.215.14",),
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://2852039166/",  # 169.254.169.254 as one number
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
    ],
)
def test_other_spellings_of_the_metadata_address_are_refused(settings, url):
    with pytest.raises(TargetRefused, match="link-local"):
        check_target_url(url, resolve=False)


@pytest.mark.parametrize("url", ["ftp://agent.example.com/", "file:///etc/passwd", "http:///x"])
def test_only_http_and_https_urls_with_a_host_are_targets(url):
    with pytest.raises(TargetRefused, match="valid http"):
        check_target_url(url, resolve=False)


def test_a_private_name_is_refused_at_resolution_unless_allowed(settings, resolving):
    resolving({"intranet.example.test": ["10.1.2.3"]})
    settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = False

    with pytest.raises(TargetRefused, match="private or loopback"):
        check_target_url("http://intranet.example.test/", resolve=True)
    settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = True
    assert check_target_url("http://intranet.example.test/", resolve=True).addresses == (
        "10.1.2.3",
    )


# -- at delivery -----------------------------------------------------------------------------------


def wake(board, agent: Agent, django_capture_on_commit_callbacks) -> HeartbeatRun:
    with django_capture_on_commit_callbacks(execute=True):
        response = board.post(f"/api/agents/{agent.pk}/wakeup", {}, format="json")
    assert response.status_code == 202, response.content
    return HeartbeatRun.objects.get(pk=stored(response.json()["id"], HeartbeatRun))


def test_a_name_that_now_resolves_to_link_local_is_refused_at_delivery_and_nothing_is_sent(
    board, company, settings, resolving, connections, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    agent = factories.AgentFactory(
        company=company,
        adapter_type=Agent.Adapter.HTTP,
        adapter_config={"url": "http://agent.example.test/wake"},
    )
    resolving({"agent.example.test": ["169.254.169.254"]})  # the DNS record changed

    run = wake(board, agent, django_capture_on_commit_callbacks)

    [delivery] = WakeDelivery.objects.filter(run=run)
    assert (delivery.attempt, delivery.succeeded, delivery.status_code) == (1, False, None)
    assert delivery.error == (
        "Target refused, nothing sent: agent.example.test (169.254.169.254) is a link-local "
        "address; it is never allowed."
    )
    assert connections == []  # no socket was opened, and no retry is queued
    assert WakeDelivery.objects.filter(run=run).count() == 1


def test_a_stored_private_url_is_refused_at_delivery_once_private_targets_are_off(
    board, company, settings, connections, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    agent = factories.AgentFactory(
        company=company,
        adapter_type=Agent.Adapter.HTTP,
        adapter_config={"url": "http://10.0.0.1/wake"},  # stored before the rule, or allowed then
    )
    settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = False

    run = wake(board, agent, django_capture_on_commit_callbacks)

    [delivery] = WakeDelivery.objects.filter(run=run)
    assert (delivery.succeeded, delivery.error) == (
        False,
        "Target refused, nothing sent: " + private_message("10.0.0.1"),
    )
    assert connections == []


def test_delivery_connects_to_the_checked_address_and_names_the_host(
    board, company, settings, resolving, connections, django_capture_on_commit_callbacks
):
    settings.TASKS = IMMEDIATE_TASKS
    with running_receiver() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
        agent = factories.AgentFactory(
            company=company,
            adapter_type=Agent.Adapter.HTTP,
            adapter_config={"url": f"http://agent.example.test:{port}/wake?via=dns"},
        )
        resolving({"agent.example.test": ["127.0.0.1"]})

        run = wake(board, agent, django_capture_on_commit_callbacks)

    [request] = receiver.requests
    assert (request.path, request.headers["host"]) == (
        "/wake?via=dns",
        f"agent.example.test:{port}",
    )
    assert connections == [("127.0.0.1", port)]
    [delivery] = WakeDelivery.objects.filter(run=run)
    assert (delivery.succeeded, delivery.status_code, delivery.error) == (True, 200, "")
