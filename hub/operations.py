"""Who may read the operational detail (`/metrics`, the checks of `/readyz`).

The metrics name every client and its traffic, and readiness names the source systems and the
signing key's age: an operator's view, not a client's. A caller sees them if its socket address
is in `HUB_OPERATIONS_ALLOWED` (loopback by default, where the bench and a sidecar scraper
sit), or if it sends a valid, unrevoked bearer token carrying the `ops:read` scope.

The address is the socket's own (`request.client`), never a forwarding header: this module
must never trust what a client says about where it comes from.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.requests import Request

from auth.errors import Forbidden
from hub.components import Hub

__all__ = ["OPERATIONS_SCOPE", "OperationsNetworks", "check_operations_access"]

OPERATIONS_SCOPE = "ops:read"

OperationsNetworks = Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]


def _address_allowed(request: Request, networks: OperationsNetworks) -> bool:
    if request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:  # a Unix socket's path, or a test client's name
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


async def check_operations_access(request: Request, hub: Hub) -> None:
    """Return if the caller may see operational detail; else raise the `AuthError` to answer.

    Without an Authorization header from an address not allowed: `Unauthenticated` (401).
    """
    if _address_allowed(request, hub.settings.operations_allowed):
        return
    # `authenticate` checks revocation too, and refuses when Redis cannot say.
    principal = await hub.auth.authenticate(request.headers.get("authorization"))
    if OPERATIONS_SCOPE not in principal.scopes:
        raise Forbidden(f"operational endpoints need the {OPERATIONS_SCOPE} scope")
