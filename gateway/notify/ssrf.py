"""Server-side request forgery: a webhook may only reach public addresses.

A webhook's host is resolved and every address it resolves to is checked, when it is subscribed and again at
each attempt (a name may be pointed elsewhere in between); the attempt then connects to an address it checked,
never resolving the name a second time. Loopback, link-local (cloud metadata at 169.254.169.254), private,
unspecified, multicast, reserved and other non-public addresses are refused unless [notify] allow_private.
"""

from __future__ import annotations

import ipaddress
import socket

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# Checked in this order, so that a refusal names the most telling kind (127.0.0.1 is also "private").
_KINDS = (("loopback", "is_loopback"), ("link-local", "is_link_local"), ("unspecified", "is_unspecified"),
          ("multicast", "is_multicast"), ("private", "is_private"), ("reserved", "is_reserved"))


class TargetRefused(ValueError):
    """The host resolves to an address a webhook may not reach."""


class Unresolved(OSError):
    """The host name does not resolve (now)."""


def kind_of(address: Address) -> str | None:
    """Why address is not public (loopback, private...), or None if it is."""
    address = getattr(address, "ipv4_mapped", None) or address
    for name, test in _KINDS:
        if getattr(address, test):
            return name
    return None if address.is_global else "non-public"


def resolve(host: str, port: int) -> list[Address]:
    """Every address host resolves to, in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolved(f"{host} does not resolve: {exc}") from exc
    found: list[Address] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])  # an IPv6 scope (%eth0) left out
        if address not in found:
            found.append(address)
    return found


def checked(host: str, port: int, allow_private: bool) -> list[Address]:
    """The addresses of host, each allowed; TargetRefused names the first that is not."""
    addresses = resolve(host, port)
    if not allow_private:
        for address in addresses:
            kind = kind_of(address)
            if kind:
                where = f"{address} is" if str(address) == host else f"{host} resolves to {address},"
                raise TargetRefused(f"{where} a {kind} address: webhooks reach public addresses only (unless "
                                    "[notify] allow_private = true)")
    return addresses
