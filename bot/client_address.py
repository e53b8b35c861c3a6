"""The address of the person behind a web request, through the reverse proxies we trust.

Behind a proxy `request.remote` is the proxy, one address for everybody. Each proxy appends
the address it received the request from to X-Forwarded-For, so reading from the right, the
first address that is not one of our proxies is the client; whatever lies further left was
written by the client and may be forged.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp import web

Networks = Sequence[IPv4Network | IPv6Network]
UNKNOWN = "?"


def client_address(request: web.Request, trusted: Networks) -> str:
    """The client's address of this request: the one function every rate limit and log
    line that needs an address uses."""
    peer = request.remote or UNKNOWN
    if not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", [])
            for hop in header.split(",")]
    found = peer
    for hop in reversed(hops):
        if _parse(hop) is None:  # garbage where a proxy should have written an address
            break
        found = hop
        if not _trusted(hop, trusted):
            break
    return found


def _trusted(address: str, trusted: Networks) -> bool:
    parsed = _parse(address)
    return parsed is not None and any(parsed in network for network in trusted)


def _parse(address: str) -> IPv4Address | IPv6Address | None:
    try:
        parsed = ip_address(address)
    except ValueError:
        return None
    # A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; 127.0.0.1/32 must match.
    mapped = parsed.ipv4_mapped if isinstance(parsed, IPv6Address) else None
    return mapped or parsed
