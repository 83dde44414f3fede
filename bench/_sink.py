"""A tiny OTLP/HTTP sink: answers 200 to every POST (the hub's span exports), counts them.

    python -m bench._sink --port P [--ready-dir DIR]
    GET /stats -> {"posts": n, "bytes": n}

It parses nothing (the export cost that matters is the hub's: building, encoding and sending
the spans), so it stays cheap next to the hub on the same cores.
"""

from __future__ import annotations

import json

from bench._serving import HttpProtocol, run_protocol_server

_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
_counts = {"posts": 0, "bytes": 0}


class _Sink(HttpProtocol):
    def __init__(self) -> None:
        super().__init__()
        self._url = b""

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


def main() -> None:
    run_protocol_server(_Sink)


if __name__ == "__main__":
    main()
