"""A lean HTTP/1.1 keep-alive load generator, so that a benchmark measures the server.

Why it exists: `socialwallet bench redeem` runs the client and the server on the same small
machine (2 cores). httpx spent 1.7 to 2.4 ms of CPU per request there, CPU taken from the
server being measured; with 32 connections it managed only about 440 requests a second
against a server that does nothing. This client spends about 30 µs per request at full speed
(about 0.2 ms at the bench's present, slow rate, where every response wakes the loop alone).

It does the least per request: requests are bytes serialised before the timed phase, sent
over N persistent connections one after another (no pipelining: each connection waits for
its response, as N concurrent clients would), and a response is read as a status line,
headers and exactly Content-Length bytes. It knows nothing of GraphQL; the caller decides
what a body means.

It reads only what uvicorn sends for small responses: bodies with a Content-Length. A chunked
response, or one without a length, raises ProtocolError rather than being misread.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

OnResponse = Callable[[int, bytes, float], None]

# Statuses whose responses never have a body (RFC 9110 §6.4.1), whatever the headers say.
_NO_BODY = (204, 304)


class ProtocolError(RuntimeError):
    """The server answered in a form this client does not read, or broke off an answer."""


def post_json(*, host: str, path: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """One `POST path` with a JSON body, as bytes; host is the Host header ("127.0.0.1:8765")."""
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    # A CR or LF in a name or value would split the request into other requests.
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError("a request line or header holds CR or LF")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run, on uvloop (a cheaper loop for the client) when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """(status, body length, whether the server closes the connection) from a response head."""
    lines = head.rstrip(b"\r\n").split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(rest[:3])
    length: int | None = None
    close = version == b"HTTP/1.0"  # HTTP/1.0 closes unless it says keep-alive
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise ProtocolError(
                f"the server sent Transfer-Encoding: {value.decode('latin-1')} (status {status}); "
                "this client reads Content-Length bodies only"
            )
        elif name == b"connection":
            tokens = {token.strip() for token in value.split(b",")}
            close = b"close" in tokens or (close and b"keep-alive" not in tokens)
    if status in _NO_BODY:
        return status, 0, close
    if length is None:
        raise ProtocolError(
            f"a response without Content-Length (status {status}); "
            "this client reads Content-Length bodies only"
        )
    return status, length, close


class _Connection:
    """One keep-alive connection, opened again when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        if self.reader is None or self.writer is None:
            reader, writer = await self.open()
        else:
            reader, writer = self.reader, self.writer
        writer.write(request)
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse_head(head)
            body = await reader.readexactly(length) if length else b""
        except asyncio.IncompleteReadError as exc:
            # Not retried: a POST may have taken effect; the caller must see the failure.
            raise ProtocolError(
                f"the server closed the connection mid-response ({len(exc.partial)} bytes read)"
            ) from exc
        if close:
            await self.close()  # the next request, if any, opens a new connection
        return status, body

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def drive(
    *,
    host: str,
    port: int | Sequence[int],
    requests: list[bytes],
    concurrency: int,
    on_response: OnResponse,
    response_timeout: float | None = None,
) -> float:
    """Send every request over `concurrency` connections; return the wall seconds it took.

    Given several ports (one server process each), the connections are spread over them in
    turn, as a load balancer in front of them would.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    ports = [port] if isinstance(port, int) else list(port)
    if not ports:
        raise ValueError("give at least one port")
    pending = deque(requests)  # one queue shared by every connection
    connections = [
        _Connection(host, ports[n % len(ports)]) for n in range(min(concurrency, len(pending)))
    ]
    clock = time.perf_counter

    async def client(connection: _Connection) -> None:
        while pending:
            request = pending.popleft()
            started = clock()
            # A server that hangs fails the run instead of stalling it for ever.
            deadline = asyncio.timeout(response_timeout)
            try:
                async with deadline:
                    status, body = await connection.exchange(request)
            except TimeoutError:
                if deadline.expired():
                    raise TimeoutError(f"no response within {response_timeout} s") from None
                raise
            on_response(status, body, clock() - started)

    try:
        # Connected before the clock starts: the timed phase measures requests, not handshakes.
        await asyncio.gather(*(connection.open() for connection in connections))
        started = clock()
        tasks = [asyncio.create_task(client(connection)) for connection in connections]
        try:
            await asyncio.gather(*tasks)
        finally:
            # On a failure, stop the other connections rather than leave them sending.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return clock() - started
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))
