"""The client's address and scheme as a trusted reverse proxy reports them (X-Forwarded-For/-Proto).

Behind nginx every request comes from the proxy's address, so login throttling, sessions and the
audit log would all see one client. Only a peer listed in TELEHEALTH_TRUSTED_PROXIES may speak for
the client; anyone else's X-Forwarded-* headers are ignored (they are trivially forged).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """Addresses or CIDR networks ("10.0.0.0/8", "127.0.0.1"); a malformed entry raises ValueError."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())


def _trusted(addr: str | None, networks: Sequence[Network]) -> bool:
    if not addr:
        return False
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(peer: str, forwarded_for: str, networks: Sequence[Network]) -> str:
    """The rightmost address in the chain that is not one of our proxies (the left part is client-written)."""
    if not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def forwarded_middleware(networks: Sequence[Network]) -> Middleware:
    """Rewrite remote and scheme from a trusted proxy's headers; without proxies configured, do nothing."""

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.remote
        if peer is None or not _trusted(peer, networks):
            return await handler(request)
        remote = client_address(peer, request.headers.get("X-Forwarded-For", ""), networks)
        proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        scheme = proto if proto in ("http", "https") else request.scheme
        return await handler(request.clone(remote=remote, scheme=scheme))

    return forwarded
