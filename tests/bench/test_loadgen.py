"""bench/loadgen.py against a tiny asyncio HTTP server: answers, concurrency, reconnects, refusals."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from bench import loadgen
from bench.redeem import _tally


class Server:
    """An HTTP/1.1 server that answers "echo:<body>" and counts connections and requests."""

    def __init__(self, *, delay: float = 0.0, mode: str = "keep-alive") -> None:
        self.delay, self.mode = delay, mode
        self.accepted = 0  # connections opened
        self.open = self.peak_open = 0  # connections open now, and at most
        self.busy = self.peak_busy = 0  # requests being answered now, and at most
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.stopped = asyncio.Event()  # set at the end of the test: "hang" stops hanging

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed the connection
                request_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
                headers = {}
                for line in lines:
                    name, _, value = line.partition(":")
                    headers[name.lower()] = value.strip()
                body = await reader.readexactly(int(headers["content-length"]))
                self.requests.append((request_line, headers, body))
                self.busy += 1
                self.peak_busy = max(self.peak_busy, self.busy)
                await asyncio.sleep(self.delay)
                self.busy -= 1
                if self.mode == "silent":
                    return  # hang up without answering
                if self.mode == "hang":
                    await self.stopped.wait()
                    return
                writer.write(self.response(request_line, b"echo:" + body))
                await writer.drain()
                if self.mode == "close":
                    return
        finally:
            self.open -= 1
            writer.close()

    def response(self, request_line: str, body: bytes) -> bytes:
        status = b"418 I'm a teapot" if " /teapot " in request_line else b"200 OK"
        if self.mode == "chunked":
            chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks
        if self.mode == "no-length":
            return b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + body
        close = b"Connection: close\r\n" if self.mode == "close" else b""
        length = b"Content-Length: %d\r\n" % len(body)
        return b"HTTP/1.1 " + status + b"\r\n" + length + close + b"\r\n" + body


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[int]:
    """Serve on a free loopback port; yield the port."""
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        server.stopped.set()
        listener.close()
        await listener.wait_closed()


def requests(port: int, n: int, path: str = "/echo") -> list[bytes]:
    return [
        loadgen.post_json(
            host=f"127.0.0.1:{port}",
            path=path,
            body=json.dumps({"n": i}).encode(),
            headers={"Authorization": "Bearer t0ken"},
        )
        for i in range(n)
    ]


async def test_every_request_is_answered_over_n_keep_alive_connections():
    # Given a server that takes 20 ms per answer
    server = Server(delay=0.02)
    answers: list[tuple[int, bytes, float]] = []
    async with serving(server) as port:
        # When 4 clients send 40 requests
        elapsed = await loadgen.drive(
            host="127.0.0.1",
            port=port,
            requests=requests(port, 40),
            concurrency=4,
            on_response=lambda status, body, latency: answers.append((status, body, latency)),
        )
    # Then every request has its own answer, and took at least the server's 20 ms
    assert sorted(body for _, body, _ in answers) == sorted(
        b'echo:{"n": %d}' % i for i in range(40)
    )
    assert {status for status, _, _ in answers} == {200}
    assert all(latency >= 0.02 for _, _, latency in answers)
    # 10 rounds of 20 ms: the clients overlapped, and the wall clock covers them
    assert 0.2 <= elapsed < 0.2 * 4
    # And 4 connections carried them all, 4 requests at a time, never more
    assert server.accepted == 4 and server.peak_open == 4
    assert server.peak_busy == 4
    # And the requests are what post_json says
    request_line, headers, body = server.requests[0]
    assert request_line == "POST /echo HTTP/1.1"
    assert headers["host"] == f"127.0.0.1:{port}"
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["content-length"] == str(len(body))


async def test_connections_are_spread_evenly_over_several_servers():
    # Given two servers (two processes behind a balancer, in the bench)
    first, second = Server(), Server()
    async with serving(first) as port_a, serving(second) as port_b:
        # When 6 clients send 60 requests to the pair
        await loadgen.drive(
            host="127.0.0.1",
            port=[port_a, port_b],
            requests=requests(port_a, 60),
            concurrency=6,
            on_response=lambda status, body, latency: None,
        )
    # Then each server holds three of the connections, and together they answered everything
    assert (first.accepted, second.accepted) == (3, 3)
    assert len(first.requests) + len(second.requests) == 60
    assert first.requests and second.requests


async def test_fewer_requests_than_clients_open_only_the_connections_needed():
    server = Server()
    answers: list[int] = []
    async with serving(server) as port:
        await loadgen.drive(
            host="127.0.0.1",
            port=port,
            requests=requests(port, 3),
            concurrency=32,
            on_response=lambda status, body, latency: answers.append(status),
        )
    assert answers == [200, 200, 200]
    assert server.accepted == 3


async def test_a_non_200_status_reaches_the_callback_and_the_bench_counts_it():
    server = Server()
    outcomes: dict[str, int] = {}
    latencies: list[float] = []
    async with serving(server) as port:
        await loadgen.drive(
            host="127.0.0.1",
            port=port,
            requests=requests(port, 5, path="/teapot"),
            concurrency=2,
            on_response=_tally(outcomes, latencies),
        )
    assert outcomes == {"HTTP_418": 5}
    assert len(latencies) == 5


def test_the_bench_tally_reads_graphql_outcomes():
    outcomes: dict[str, int] = {}
    tally = _tally(outcomes, None)
    tally(200, b'{"data": {"redeemMeal": {"__typename": "MealRedeemed", "replayed": false}}}', 0.1)
    tally(200, b'{"data": {"redeemMeal": {"__typename": "VoucherRefused", "code": "X"}}}', 0.1)
    tally(200, b'{"data": null, "errors": [{"extensions": {"code": "RATE_LIMITED"}}]}', 0.1)
    batch = {"__typename": "MealBatchResult", "served": 2, "refused": 1}
    batch["items"] = [{"code": None}, {"code": "ALREADY_REDEEMED"}, {"code": None}]
    tally(200, json.dumps({"data": {"redeemMealsBatch": batch}}).encode(), 0.1)
    tally(503, b"Service Unavailable", 0.1)
    assert outcomes == {
        "MealRedeemed": 1,
        "X": 1,
        "RATE_LIMITED": 1,
        "served": 2,
        "ALREADY_REDEEMED": 1,
        "HTTP_503": 1,
    }


async def test_connection_close_from_the_server_is_followed_by_a_new_connection():
    # Given a server that closes the connection after every answer
    server = Server(mode="close")
    answers: list[bytes] = []
    async with serving(server) as port:
        await loadgen.drive(
            host="127.0.0.1",
            port=port,
            requests=requests(port, 10),
            concurrency=2,
            on_response=lambda status, body, latency: answers.append(body),
        )
    # Then every request was answered, each on a connection of its own
    assert sorted(answers) == sorted(b'echo:{"n": %d}' % i for i in range(10))
    assert server.accepted == 10
    assert server.peak_open <= 2


@pytest.mark.parametrize(
    ("mode", "message"),
    [("chunked", "Transfer-Encoding: chunked"), ("no-length", "without Content-Length")],
)
async def test_a_body_without_content_length_is_refused_clearly(mode, message):
    server = Server(mode=mode)
    answers: list[bytes] = []
    async with serving(server) as port:
        with pytest.raises(loadgen.ProtocolError, match=message):
            await loadgen.drive(
                host="127.0.0.1",
                port=port,
                requests=requests(port, 4),
                concurrency=2,
                on_response=lambda status, body, latency: answers.append(body),
            )
    assert answers == []


async def test_a_server_hanging_up_without_answering_fails_the_run():
    server = Server(mode="silent")
    async with serving(server) as port:
        with pytest.raises(loadgen.ProtocolError, match="closed the connection"):
            await loadgen.drive(
                host="127.0.0.1",
                port=port,
                requests=requests(port, 4),
                concurrency=1,
                on_response=lambda status, body, latency: None,
            )
    # Neither retried (a POST may have taken effect) nor followed by the other requests
    assert len(server.requests) == 1


async def test_a_server_that_does_not_answer_times_out():
    server = Server(mode="hang")
    async with serving(server) as port:
        with pytest.raises(TimeoutError, match=r"no response within 0\.1 s"):
            await loadgen.drive(
                host="127.0.0.1",
                port=port,
                requests=requests(port, 2),
                concurrency=1,
                on_response=lambda status, body, latency: None,
                response_timeout=0.1,
            )


def test_post_json_refuses_a_header_that_would_split_the_request():
    with pytest.raises(ValueError, match="CR or LF"):
        loadgen.post_json(
            host="127.0.0.1:1",
            path="/graphql",
            body=b"{}",
            headers={"Authorization": "Bearer x\r\nX-Injected: 1"},
        )


def test_run_uses_uvloop_when_installed():
    pytest.importorskip("uvloop")

    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert loadgen.run(loop_module()).startswith("uvloop")
