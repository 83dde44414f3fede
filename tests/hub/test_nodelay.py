"""Every connection our servers accept has Nagle's algorithm off (TCP_NODELAY).

With it on, the second write of each response (uvicorn writes the headers, then the body) waits
for the client's delayed ACK, about 40 ms per keep-alive request; every agency client keeps its
connections alive. asyncio's own event loop (the one `hub demo` runs on) turns it off only on
sockets whose protocol says TCP, so the check is made on the server's side of real accepted
connections, not on a timing: the demo's own servers (the hub, the simulated WMS and card
system), and a simulator on a socket from `hub.servers.bind`, which every server uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn

from hub.demo import demo_servers
from hub.servers import bind, new_server, port_of
from simulators import build_cards_app, generate


async def _get_healthz(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A keep-alive connection with one answered request on it (so the server has accepted it)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return reader, writer


def _nodelay_of_accepted(server: uvicorn.Server) -> list[int]:
    """TCP_NODELAY of each connection `server` holds open, read on the server's own socket."""
    return [
        protocol.transport.get_extra_info("socket").getsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY
        )
        for protocol in server.server_state.connections
    ]


@contextlib.asynccontextmanager
async def _serving(listeners: list[tuple[uvicorn.Server, socket.socket]]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(server.serve(sockets=[sock])) for server, sock in listeners]
    try:
        async with asyncio.timeout(60):
            while not all(server.started for server, _ in listeners):
                for task in tasks:
                    if task.done():
                        task.result()  # why it did not start
                        raise RuntimeError("a server exited before it started")
                await asyncio.sleep(0.02)
        yield
    finally:
        for server, _ in listeners:
            server.should_exit = True
        await asyncio.gather(*tasks)


async def test_the_demo_hub_and_its_simulators_accept_connections_with_nodelay(
    tmp_path: Path,
) -> None:
    _, listeners = await demo_servers("127.0.0.1", 0, tmp_path, seed=2025, foreigners=100)
    async with _serving(listeners):
        for server, sock in listeners:
            _, writer = await _get_healthz(port_of(sock))
            try:
                assert _nodelay_of_accepted(server) == [1]
            finally:
                writer.close()
                await writer.wait_closed()


async def test_a_server_on_a_socket_from_bind_accepts_connections_with_nodelay() -> None:
    sock = bind("127.0.0.1", 0)
    server = new_server(build_cards_app(generate(seed=2025, foreigners=50)))
    async with _serving([(server, sock)]):
        connections = [await _get_healthz(port_of(sock)) for _ in range(2)]
        try:
            assert _nodelay_of_accepted(server) == [1, 1]
        finally:
            for _, writer in connections:
                writer.close()
                await writer.wait_closed()
