"""A tiny OTLP/HTTP sink: answers 200 to every POST (the hub's span exports), counts them.

    python -m bench._sink --port P [--ready-dir DIR]
    GET /stats -> {"posts": n, "bytes": n}

It parses nothing (the export cost that matters is the hub's: building, encoding and sending
the spans), so it stays cheap next to the hub on the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import httptools
import uvloop

from bench._serving import mark_ready, reuseport_socket

_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
_counts = {"posts": 0, "bytes": 0}


class _Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url = url

    def on_body(self, body: bytes) -> None:
        _counts["bytes"] += len(body)

    def on_message_complete(self) -> None:
        if self._transport is None:
            return
        if self._parser.get_method() == b"POST":
            _counts["posts"] += 1
            self._transport.write(_OK)
            return
        body = json.dumps(_counts).encode()
        self._transport.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body
        )


async def _serve(host: str, port: int, ready_dir: str | None) -> None:
    server = await asyncio.get_running_loop().create_server(
        _Sink, sock=reuseport_socket(host, port)
    )
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
