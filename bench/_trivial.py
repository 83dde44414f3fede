"""A server that does nothing: the load generator's ceiling is measured against it.

    python -m bench._trivial --port P --ready-dir DIR

A bare uvloop protocol answering every request with the same fixed JSON: whatever rate the
generator reaches here is the most it can send, so any figure well below it is the server's.
"""

from __future__ import annotations

import argparse
import asyncio

import httptools
import uvloop

from bench._serving import mark_ready, reuseport_socket

_BODY = (
    b'{"data":{"permit":{"number":"420100202600050124","status":"VALID",'
    b'"validUntil":"2027-01-01","isValid":true}}}'
)
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class _Trivial(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_message_complete(self) -> None:
        if self._transport is not None:
            self._transport.write(_RESPONSE)


async def _serve(host: str, port: int, ready_dir: str | None) -> None:
    sock = reuseport_socket(host, port)
    server = await asyncio.get_running_loop().create_server(_Trivial, sock=sock, backlog=1024)
    mark_ready(ready_dir)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-dir")
    args = parser.parse_args()
    uvloop.run(_serve(args.host, args.port, args.ready_dir))


if __name__ == "__main__":
    main()
