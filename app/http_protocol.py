"""uvicorn's httptools protocol with a bound on the request line and headers, and each
response's head and body in one write.

httptools is uvicorn's fast HTTP parser (C), but it has no limit of its own: it buffers a
header value until the value ends, so an 8 MB header was read whole. h11 has a limit and is
pure Python, which costs every request CPU on the hot path (the canteen's redemptions). This
keeps httptools and counts what arrives until the headers are complete: past the bound
(`--max-header-bytes`, passed through uvicorn's `h11_max_incomplete_event_size`) the request
is answered 400 and the connection closed, before more is buffered.

uvicorn writes a response's status line and headers as soon as the app starts the response,
and the body in a second write: two system calls, and two segments for the client to read,
for every answer of a few hundred bytes. A profile of the redemption benchmark put a sixth
of the servers' CPU in socket writes; the head now waits for the body's first part and both
leave in one write.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle


class HeadWithBody:
    """A response cycle's transport that holds the response's head (the cycle's first write
    once the response has started) and writes it with the body's first part.

    A `100 Continue` is written before the response starts, so it is never held. A response
    that starts and never sends its body is broken whatever is written: uvicorn closes the
    connection, and the held head is dropped with it.
    """

    def __init__(self, transport: asyncio.Transport, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._head_written = False

    def write(self, data: bytes) -> None:
        if not self._head_written and self._cycle.response_started:
            self._head_written = True
            self._head = bytes(data)
            return
        if self._head is not None:
            data, self._head = self._head + data, None
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        # Everything else (close, is_closing, get_extra_info, ...) is the transport's own.
        return getattr(self._transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol refusing a request line and headers longer than the configured bound,
    writing each response's head with its body."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Counted after parsing, so that a chunk that completes the headers and carries the
        # body with them is not mistaken for a long head.
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > (self.config.h11_max_incomplete_event_size or 65_536):
                self.send_400_response("Request line and headers too large.")

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # Every cycle starts here, pipelined ones too (when their turn comes).
        cycle.transport = HeadWithBody(self.transport, cycle)  # type: ignore[assignment]
        super()._start_asgi_task(cycle, app)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The connection may carry another request (keep-alive): its head is counted anew.
        self._in_head, self._head_bytes = True, 0
