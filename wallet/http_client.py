"""A lean HTTP/1.1 client for the outbound adapters (SMS gateway, bank): JSON POSTs over a
small, bounded pool of keep-alive connections per origin.

Why not httpx: the relay sends thousands of small POSTs a second, and httpx spent ~2.5 ms of
CPU on each (its pool's bookkeeping grows with the connections), ten times our own work per
message. This client does the least per request: the request is bytes built at once, written
on an idle connection (asyncio.Protocol, no stream layers), and the answer is parsed by
`httptools` (llhttp, the parser uvicorn uses: Content-Length, chunked and close-delimited
bodies, keep-alive rules) as it arrives.

    HttpClientError           the exchange failed; whether the server acted on it is unknown
    ├── HttpTimeout           no complete answer within the timeout (connect included)
    ├── HttpTransportError    connection refused or reset, TLS failure, a broken answer
    └── (ProtocolError)       an answer this client will not read (too big, not HTTP)

Retrying a failed exchange is the caller's decision (the outbox retries with backoff, under
the message's idempotency key). The client itself resends only a request written on a reused
keep-alive connection that the server had closed before answering: the usual race of an
idle connection timing out on the server, where nothing of the request was answered.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

USER_AGENT = "socialwallet-relay/1"
# Gateway answers are a few hundred bytes; anything much bigger is not an answer we read.
MAX_RESPONSE_BYTES = 1 << 20
# The status line and headers of an answer; llhttp itself sets no bound.
MAX_HEAD_BYTES = 64 * 1024


class HttpClientError(Exception):
    """The exchange did not complete; the request may or may not have reached the server."""


class HttpTimeout(HttpClientError):
    """No complete answer within the timeout."""


class HttpTransportError(HttpClientError):
    """The connection failed, or the answer broke off or was not HTTP."""


class ProtocolError(HttpTransportError):
    """The server answered in a form this client does not read."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def _split(url: str) -> tuple[_Origin, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http:// or https:// URL with a host is needed")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    return _Origin(parts.scheme, parts.hostname, port), target


def build_post(*, origin_host: str, target: str, body: bytes, headers: Mapping[str, str]) -> bytes:
    """The bytes of one `POST target` with a JSON body."""
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {origin_host}",
        f"User-Agent: {USER_AGENT}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    # A CR or LF in a name or value would split the request into other requests.
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError("a request line or header holds CR or LF")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one exchange at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used = False
        self._answer: asyncio.Future[Response] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._head_size = 0
        self._started = False  # a byte of the current answer arrived
        self._headers_done = False
        self._framed = False  # the answer says where its body ends (length or chunked)
        self._keep_alive = False

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (create_connection made it), though not always a subclass of
        # asyncio.Transport: uvloop's TCPTransport is its own class.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._parser is None:
            # Bytes nobody asked for: the connection is out of step; drop it.
            self.close()
            return
        self._started = True
        if not self._headers_done:
            self._head_size += len(data)
            if self._head_size > MAX_HEAD_BYTES:
                self._fail(ProtocolError("the answer's headers are larger than this client reads"))
                self.close()
                return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"not an HTTP/1.1 answer: {type(exc).__name__}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is not None and not self._answer.done():
            if self._headers_done and not self._framed:
                # A body delimited by the end of the connection (HTTP/1.0 style).
                self._complete()
            else:
                self._fail(_ClosedBeforeAnswer(self._started))

    # -- httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_RESPONSE_BYTES:
            self._fail(ProtocolError("the answer is larger than this client reads"))
            self.close()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete()

    # -- use
    async def exchange(self, request: bytes) -> Response:
        assert self.transport is not None
        self.used = True
        self._answer = asyncio.get_running_loop().create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._body, self._size, self._head_size = [], 0, 0
        self._started = self._headers_done = self._framed = False
        self.transport.write(request)
        try:
            return await self._answer
        finally:
            self._answer = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _complete(self) -> None:
        parser, answer = self._parser, self._answer
        self._parser = None
        if parser is None or answer is None or answer.done():
            return
        self._keep_alive = parser.should_keep_alive()
        if not self._keep_alive:
            self.close()
        answer.set_result(Response(parser.get_status_code(), b"".join(self._body)))

    def _fail(self, error: Exception) -> None:
        self._parser = None
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)


class _ClosedBeforeAnswer(HttpTransportError):
    def __init__(self, started: bool) -> None:
        super().__init__("the server closed the connection before answering")
        self.started = started


class _Pool:
    """At most `size` connections to one origin, idle ones reused most recent first."""

    def __init__(self, origin: _Origin, size: int, ssl_context: ssl.SSLContext | None) -> None:
        self.origin = origin
        self._slots = asyncio.Semaphore(size)
        self._idle: deque[_Connection] = deque()
        self._ssl = ssl_context
        self.closed = False

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_connection(
                _Connection,
                self.origin.host,
                self.origin.port,
                ssl=self._ssl,
                server_hostname=self.origin.host if self._ssl else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise HttpTransportError(f"cannot connect: {type(exc).__name__}") from exc
        return connection

    async def exchange(self, request: bytes) -> Response:
        async with self._slots:
            while self._idle:
                connection = self._idle.pop()
                if connection.closed:
                    continue
                try:
                    response = await connection.exchange(request)
                except _ClosedBeforeAnswer as exc:
                    if exc.started:
                        raise
                    # The server had closed this idle connection: try the next or a new one.
                    continue
                except BaseException:
                    connection.close()
                    raise
                self._release(connection)
                return response
            connection = await self._connect()
            try:
                response = await connection.exchange(request)
            except BaseException:
                connection.close()
                raise
            self._release(connection)
            return response

    def _release(self, connection: _Connection) -> None:
        if self.closed:
            connection.close()
        elif not connection.closed:
            self._idle.append(connection)

    def close(self) -> None:
        self.closed = True
        while self._idle:
            self._idle.pop().close()


class HttpClient:
    """JSON POSTs over keep-alive connections, at most `max_connections` per origin."""

    def __init__(
        self, *, max_connections: int = 32, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._size = max_connections
        self._ssl_context = ssl_context
        self._pools: dict[_Origin, _Pool] = {}
        # Requests to a URL differ only in their body and headers: split it once.
        self._targets: dict[str, tuple[_Origin, str]] = {}

    async def post(
        self,
        url: str,
        *,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        request_timeout: float,
    ) -> Response:
        """POST `body` (JSON) to `url`; the answer, or HttpTimeout / HttpTransportError.

        `request_timeout` (seconds) bounds the whole exchange: waiting for a free connection, connecting,
        writing and reading the answer.
        """
        split = self._targets.get(url)
        if split is None:
            split = self._targets[url] = _split(url)
        origin, target = split
        request = build_post(
            origin_host=origin.host_header, target=target, body=body, headers=headers or {}
        )
        pool = self._pools.get(origin)
        if pool is None:
            context = None
            if origin.scheme == "https":
                context = self._ssl_context or ssl.create_default_context()
            pool = self._pools[origin] = _Pool(origin, self._size, context)
        try:
            async with asyncio.timeout(request_timeout):
                return await pool.exchange(request)
        except TimeoutError as exc:
            raise HttpTimeout(f"no answer within {request_timeout:g} s") from exc

    async def aclose(self) -> None:
        """Close every idle connection (connections in use close when their exchange ends)."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
