"""A server that does nothing: the load generator's ceiling is measured against it.

    python -m bench._trivial --port P --ready-dir DIR

A bare uvloop protocol answering every request with the same fixed JSON: whatever rate the
generator reaches here is the most it can send, so any figure well below it is the server's.
"""

from __future__ import annotations

from bench._serving import HttpProtocol, run_protocol_server

_BODY = (
    b'{"data":{"permit":{"number":"420100202600050124","status":"VALID",'
    b'"validUntil":"2027-01-01","isValid":true}}}'
)
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class _Trivial(HttpProtocol):
    def on_message_complete(self) -> None:
        if self._transport is not None:
            self._transport.write(_RESPONSE)


def main() -> None:
    run_protocol_server(_Trivial)


if __name__ == "__main__":
    main()
