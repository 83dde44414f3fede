"""Where the hub may send a client's webhooks: the rules for a `webhook_url`.

Checked when a client registers the URL and again before every delivery, since what a name
resolves to can change in between (DNS rebinding). A target is an `https` URL without user
name or password whose host resolves only to public unicast addresses: every address is
checked, and the caller connects to a checked address rather than resolving again. The
embedded demo may also use `http`, and only to a loopback address. Addresses are classified
with the standard `ipaddress` module; IPv4 addresses carried inside IPv6 ones (mapped, 6to4,
NAT64) are judged as the IPv4 address they carry.

Never: connect anywhere (this module only resolves), or repeat a URL's user name or password
in an error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx

__all__ = [
    "Address",
    "Resolver",
    "WebhookTarget",
    "WebhookTargetRefused",
    "WebhookTargetUnresolved",
    "WebhookTargets",
    "refusal_of",
    "system_resolver",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

_METADATA = frozenset(
    {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL_CHARS = 2048  # the registry's column
RESOLVE_TIMEOUT_SECONDS = 5.0


class WebhookTargetRefused(ValueError):
    """The URL may never receive webhooks (one line, safe to show: no userinfo).

    `brief`: the reason in at most 64 characters, for a delivery's recorded status.
    """

    def __init__(self, message: str, brief: str | None = None) -> None:
        super().__init__(message)
        self.brief = (brief or message.removeprefix("webhook URL: "))[:64]


class WebhookTargetUnresolved(WebhookTargetRefused):
    """The host did not resolve now; it may later."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the operating system resolves `host` to (without blocking the loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _carried(address: Address) -> Address:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal_of(address: Address, *, loopback: bool) -> str | None:
    """Why webhooks may not go to `address` ("a private address"...), or None."""
    inner = _carried(address)
    if address in _METADATA or inner in _METADATA:
        return "a cloud metadata address"
    if inner.is_loopback:
        return None if loopback else "a loopback address (allowed in the demo only)"
    if inner.is_unspecified:
        return "an unspecified address"
    if inner.is_link_local:
        return "a link-local address"
    if inner.is_multicast:
        return "a multicast address"
    if inner.is_private:
        return "a private address"
    if not inner.is_global or inner.is_reserved:
        return "a reserved address"
    return None


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A checked target: connect to `addresses[0]`, say `authority` in Host, `host` in SNI."""

    url: httpx.URL
    host: str
    authority: str  # host[:port] as the URL gives it, for the Host header
    addresses: tuple[Address, ...]

    def pinned(self) -> httpx.URL:
        """The URL with its host replaced by the checked address (no second resolution)."""
        return self.url.copy_with(host=str(self.addresses[0]))


@dataclass(frozen=True)
class WebhookTargets:
    """The rules. `demo`: the embedded demo, where http to a loopback address is allowed."""

    demo: bool = False
    resolve: Resolver = field(default=system_resolver)

    def parse(self, text: str) -> httpx.URL:
        """The URL if its form is acceptable (before any resolution); else refused."""
        try:
            url = httpx.URL(text)
        except (httpx.InvalidURL, TypeError):
            url = None
        if url is None or not url.is_absolute_url or len(text) > MAX_URL_CHARS:
            raise WebhookTargetRefused(
                f"webhook URL: not a valid absolute URL of at most {MAX_URL_CHARS} characters"
            )
        if url.userinfo:
            raise WebhookTargetRefused("webhook URL: no user name or password in the URL")
        if url.scheme not in ("https", "http") or (url.scheme == "http" and not self.demo):
            raise WebhookTargetRefused(
                "webhook URL: https only (http only to a loopback address, in the demo)"
            )
        if not url.host:
            raise WebhookTargetRefused("webhook URL: no host")
        if url.port is not None and not 0 < url.port < 65536:
            raise WebhookTargetRefused("webhook URL: the port must be 1 to 65535")
        return url

    async def check(self, text: str) -> WebhookTarget:
        """The target, every address of its host checked; refused or unresolved otherwise."""
        url = self.parse(text)
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses: Sequence[Address] = [ipaddress.ip_address(host)]
            literal = True
        except ValueError:
            addresses = await self._resolved(url.raw_host.decode("ascii"), port)
            literal = False
        for address in addresses:
            why = refusal_of(address, loopback=self.demo)
            if why is not None:
                said = f"{host} is" if literal else f"{host} resolves to {address},"
                raise WebhookTargetRefused(f"webhook URL: {said} {why}", f"{address}: {why}")
        if url.scheme == "http" and not all(_carried(a).is_loopback for a in addresses):
            raise WebhookTargetRefused(
                "webhook URL: https only (http only to a loopback address, in the demo)"
            )
        authority = url.netloc.decode("ascii")
        return WebhookTarget(url, url.raw_host.decode("ascii"), authority, tuple(addresses))

    async def _resolved(self, host: str, port: int) -> list[Address]:
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                answers = await self.resolve(host, port)
        except (OSError, TimeoutError):
            raise WebhookTargetUnresolved(f"webhook URL: {host} does not resolve") from None
        addresses = []
        for answer in answers:
            try:  # a scoped IPv6 answer ("fe80::1%eth0") is link-local whatever its scope
                addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
            except ValueError:
                raise WebhookTargetUnresolved(f"webhook URL: {host}: bad answer") from None
        if not addresses:
            raise WebhookTargetUnresolved(f"webhook URL: {host} does not resolve")
        return addresses
