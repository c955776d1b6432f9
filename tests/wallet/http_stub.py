"""A scripted HTTP/1.1 server on a loopback port, for the lean client and the HTTP gateways.

Each request is read (head, then Content-Length bytes) and handed to `handler`, which
returns what to do: `(status, body)` to answer with a Content-Length body, raw `bytes` to
write as they are (a chunked or broken answer; one saying `connection: close` is followed by
closing the connection), `HANG` to never answer, or `CLOSE` to close
the connection without a word. The stub counts connections and keeps every request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

HANG = object()
CLOSE = object()


@dataclass
class StubRequest:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int  # the number of the connection it came on, from 1


class HttpStub:
    def __init__(self, handler: Callable[[StubRequest], object]) -> None:
        self.handler = handler
        self.requests: list[StubRequest] = []
        self.connections = 0
        self.open_connections = 0
        self.most_open = 0
        self.server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    def url(self, path: str = "/v1/messages") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def drop_idle_connections(self) -> None:
        """Close every connection from the server's side (an idle keep-alive timing out)."""
        for writer in list(self._writers):
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self.open_connections += 1
        self.most_open = max(self.most_open, self.open_connections)
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines)
                }
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = StubRequest(method, target, headers, body, number)
                self.requests.append(request)
                answer = self.handler(request)
                if asyncio.iscoroutine(answer):
                    answer = await answer
                if answer is HANG:
                    # Until the client gives up and closes the connection.
                    await reader.read()
                    return
                if answer is CLOSE:
                    return
                if isinstance(answer, bytes):
                    writer.write(answer)
                    if b"connection: close" in answer.lower():
                        await writer.drain()
                        return
                else:
                    assert isinstance(answer, tuple)  # (status, body): the handler's third form
                    status, text = answer
                    data: bytes = text.encode() if isinstance(text, str) else text
                    writer.write(
                        f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                        f"content-length: {len(data)}\r\n\r\n".encode()
                        + data
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_connections -= 1
            self._writers.discard(writer)
            writer.close()


@contextlib.asynccontextmanager
async def http_stub(handler: Callable[[StubRequest], object]) -> AsyncIterator[HttpStub]:
    stub = HttpStub(handler)
    stub.server = await asyncio.start_server(stub._serve, "127.0.0.1", 0)
    try:
        yield stub
    finally:
        stub.drop_idle_connections()
        stub.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(stub.server.wait_closed(), 2)
