"""The served HTTP protocol (app/http_protocol.py): each response leaves in one write, its
head with its body, and nothing else changes in what the client reads."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from app.http_protocol import BoundedHttpToolsProtocol

REQUEST = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


class RecordingTransport:
    """An asyncio transport that keeps each write apart."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...

    def set_protocol(self, _protocol: Any) -> None: ...


def _connected(app: Any) -> tuple[BoundedHttpToolsProtocol, RecordingTransport]:
    # No log configuration: uvicorn's would change the process's loggers for later tests.
    config = Config(app=app, http=BoundedHttpToolsProtocol, log_config=None, log_level=None)
    config.load()
    protocol = BoundedHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def _answered(protocol: BoundedHttpToolsProtocol) -> None:
    while protocol.tasks:
        await asyncio.gather(*protocol.tasks)


async def _serve(app: Any, data: bytes) -> RecordingTransport:
    protocol, transport = _connected(app)
    protocol.data_received(data)
    await _answered(protocol)
    return transport


async def _answer(scope: Any, receive: Any, send: Any, body: bytes = b"hello") -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def test_a_response_is_one_write_of_its_head_and_body():
    # when a request is answered
    transport = await _serve(_answer, REQUEST)
    # then the status line, headers and body leave in one write
    assert len(transport.writes) == 1
    head, body = transport.writes[0].split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"content-length: 5" in head
    assert body == b"hello"


async def test_keep_alive_requests_each_leave_in_one_write():
    # when two requests arrive back to back on one connection
    transport = await _serve(_answer, REQUEST * 2)
    # then each answer is one write of its own, in order
    assert len(transport.writes) == 2
    assert all(w.startswith(b"HTTP/1.1 200 OK") and w.endswith(b"hello") for w in transport.writes)


async def test_a_streamed_response_sends_its_head_with_the_first_part():
    async def streamed(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"one", "more_body": True})
        await send({"type": "http.response.body", "body": b"two"})

    # when a response comes in parts (chunked)
    transport = await _serve(streamed, REQUEST)
    # then the head leaves with the first part, and the rest follows as it comes
    assert len(transport.writes) == 2
    assert transport.writes[0].startswith(b"HTTP/1.1 200 OK")
    assert transport.writes[0].endswith(b"\r\n\r\n3\r\none\r\n")
    assert transport.writes[1] == b"3\r\ntwo\r\n0\r\n\r\n"


async def test_a_100_continue_is_not_held_back():
    seen_before_answer: list[int] = []
    transport_holder: list[RecordingTransport] = []

    async def reads_then_answers(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        seen_before_answer.append(len(transport_holder[0].writes))
        await _answer(scope, lambda: asyncio.sleep(0), send)

    protocol, transport = _connected(reads_then_answers)
    transport_holder.append(transport)
    # given a client that waits for 100 Continue before it sends its body
    protocol.data_received(
        b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    )
    await asyncio.sleep(0)
    protocol.data_received(b"ok")
    await _answered(protocol)
    # then the 100 Continue left at once, before the answer, which is one write
    assert transport.writes[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert seen_before_answer == [1]
    assert len(transport.writes) == 2 and transport.writes[1].endswith(b"hello")
