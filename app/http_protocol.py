"""uvicorn's httptools protocol with a bound on the request line and headers.

httptools is uvicorn's fast HTTP parser (C), but it has no limit of its own: it buffers a
header value until the value ends, so an 8 MB header was read whole. h11 has a limit and is
pure Python, which costs every request CPU on the hot path (the canteen's redemptions). This
keeps httptools and counts what arrives until the headers are complete: past the bound
(`--max-header-bytes`, passed through uvicorn's `h11_max_incomplete_event_size`) the request
is answered 400 and the connection closed, before more is buffered.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol refusing a request line and headers longer than the configured bound."""

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

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # The connection may carry another request (keep-alive): its head is counted anew.
        self._in_head, self._head_bytes = True, 0
