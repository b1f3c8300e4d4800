"""Where this server may send a request on someone's behalf: wake URLs of `http` agents and
webhook endpoints (DESIGN §9).

A target is an http(s) URL whose address is public. Private and loopback addresses are refused
unless `PAPERCLIP_WEBHOOK_ALLOW_PRIVATE` is on (`make run`, tests, an all-internal deployment);
link-local ones (169.254.0.0/16, fe80::/10: cloud metadata endpoints) and multicast are refused
always. A URL is checked when it is stored (`resolve=False`: IP literals and `localhost`, no
DNS) and again just before each delivery (`resolve=True`: every address the name resolves to),
so a DNS change cannot smuggle a refused address in; the delivery then connects to the address
that was checked, never to a second lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from paperclip.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = {"http": 80, "https": 443}
# IPv6 forms that carry an IPv4 address the packet ends up at (NAT64 well-known prefix).
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(ValidationFailed):
    """A URL this server will not send to; `details` names `url`, as a stored URL's error does."""

    default_message = "Target refused"

    def __init__(self, reason: str):
        super().__init__(details={"url": [reason]})
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class TargetUnresolved(TargetRefused):
    """The host name does not resolve (now): refused, but a later attempt may succeed."""


@dataclass(frozen=True)
class Target:
    """A checked URL. `addresses` are the checked IPs to connect to (empty when not resolved
    and the host is a name)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_target_url(url: str, *, resolve: bool) -> Target:
    """The URL as a `Target`, or `TargetRefused` saying why not.

    With `resolve`, the host name is looked up and every address must pass (one refused address
    refuses the URL: the connection could land on any of them); a name that does not resolve is
    refused too (`TargetUnresolved`: a delivery retries it later).
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("Enter a valid http(s) URL.") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in SCHEMES or not host:
        raise TargetRefused("Enter a valid http(s) URL.")
    port = port or SCHEMES[scheme]
    literal = _ip_literal(host)
    if literal is not None:
        _check_address(literal)
        return Target(url, scheme, host, port, (str(literal),))
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
        _check_address(ipaddress.ip_address("127.0.0.1"))
    if not resolve:
        return Target(url, scheme, host, port, ())
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetUnresolved(f"Host {host} does not resolve ({exc}).") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetUnresolved(f"Host {host} does not resolve.")
    for address in addresses:
        _check_address(ipaddress.ip_address(address), host=host)
    return Target(url, scheme, host, port, addresses)


def _ip_literal(host: str) -> IPAddress | None:
    """The host as an IP address when it is one, in any form the resolver would read as one
    (`169.254.169.254`, `::1`, and the old IPv4 shorthands `2852039166`, `0xa9.0xfe.0xa9.0xfe`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host.replace(".", "").isalnum() and host[:1].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one delivers to (mapped `::ffff:a.b.c.d`, NAT64, 6to4)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _check_address(address: IPAddress, *, host: str | None = None) -> None:
    shown = f"{host} ({address})" if host else str(address)
    embedded = _embedded_ipv4(address)
    candidates = (address,) if embedded is None else (address, embedded)
    if any(candidate.is_link_local for candidate in candidates):
        raise TargetRefused(f"{shown} is a link-local address; it is never allowed.")
    if any(candidate.is_multicast for candidate in candidates):
        raise TargetRefused(f"{shown} is a multicast address; it is never allowed.")
    if settings.PAPERCLIP_WEBHOOK_ALLOW_PRIVATE:
        return
    if not all(candidate.is_global for candidate in candidates):
        raise TargetRefused(
            f"{shown} is a private or loopback address "
            "(allowed only with PAPERCLIP_WEBHOOK_ALLOW_PRIVATE=1)."
        )
