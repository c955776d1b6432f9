"""The lean HTTP/1.1 client the SMS and bank gateways send through: keep-alive, a bounded
pool, the answers a gateway may give, and the failures it may meet."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from tests.wallet.http_stub import CLOSE, HANG, http_stub
from wallet.http_client import (
    MAX_HEAD_BYTES,
    MAX_RESPONSE_BYTES,
    HttpClient,
    HttpTimeout,
    HttpTransportError,
    ProtocolError,
)


async def test_a_post_carries_its_body_and_headers_and_reads_the_answer():
    async with http_stub(lambda request: (202, '{"id": "abc"}')) as stub:
        client = HttpClient()
        answer = await client.post(
            stub.url("/v1/messages?x=1"),
            body=b'{"to": "+77011234567"}',
            headers={"Authorization": "Bearer t"},
            request_timeout=5,
        )
        await client.aclose()
        port = stub.port
    assert (answer.status, json.loads(answer.body)) == (202, {"id": "abc"})
    (request,) = stub.requests
    assert (request.method, request.target) == ("POST", "/v1/messages?x=1")
    assert request.headers["authorization"] == "Bearer t"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["host"] == f"127.0.0.1:{port}"
    assert request.body == b'{"to": "+77011234567"}'


async def test_requests_one_after_another_share_one_keep_alive_connection():
    async with http_stub(lambda request: (200, "{}")) as stub:
        client = HttpClient()
        for _ in range(20):
            await client.post(stub.url(), body=b"{}", request_timeout=5)
        await client.aclose()
    assert len(stub.requests) == 20 and stub.connections == 1


async def test_no_more_connections_than_the_pool_allows_however_many_requests_wait():
    async def slow(request):
        await asyncio.sleep(0.02)
        return 200, "{}"

    async with http_stub(slow) as stub:
        client = HttpClient(max_connections=3)
        answers = await asyncio.gather(
            *(client.post(stub.url(), body=b"{}", request_timeout=5) for _ in range(30))
        )
        await client.aclose()
    assert [answer.status for answer in answers] == [200] * 30
    assert stub.most_open <= 3 and stub.connections <= 3


async def test_a_chunked_answer_is_read_whole_and_the_connection_kept():
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b'5\r\n{"id"\r\n7\r\n: "c1"}\r\n0\r\n\r\n'
    )
    async with http_stub(lambda request: chunked) as stub:
        client = HttpClient()
        first = await client.post(stub.url(), body=b"{}", request_timeout=5)
        second = await client.post(stub.url(), body=b"{}", request_timeout=5)
        await client.aclose()
    assert first.body == second.body == b'{"id": "c1"}'
    assert stub.connections == 1


async def test_an_answer_ended_by_closing_the_connection_is_read_and_not_reused():
    closing = b'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n{"id": "x"}'

    def handler(request):
        return closing

    async with http_stub(handler) as stub:
        client = HttpClient()
        first = await client.post(stub.url(), body=b"{}", request_timeout=5)
        second = await client.post(stub.url(), body=b"{}", request_timeout=5)
        await client.aclose()
    assert first.body == second.body == b'{"id": "x"}'
    assert stub.connections == 2


async def test_a_keep_alive_connection_the_server_dropped_is_replaced_without_an_error():
    async with http_stub(lambda request: (200, "{}")) as stub:
        client = HttpClient()
        await client.post(stub.url(), body=b"{}", request_timeout=5)
        # Given the server closed the idle connection (its keep-alive timeout)
        stub.drop_idle_connections()
        await asyncio.sleep(0.05)
        # When the next request goes out, Then it is answered over a new connection
        answer = await client.post(stub.url(), body=b"{}", request_timeout=5)
        await client.aclose()
    assert answer.status == 200 and stub.connections == 2


async def test_a_server_that_does_not_answer_in_time_is_a_timeout():
    async with http_stub(lambda request: HANG) as stub:
        client = HttpClient()
        with pytest.raises(HttpTimeout):
            await client.post(stub.url(), body=b"{}", request_timeout=0.2)
        await client.aclose()


async def test_a_connection_closed_before_the_answer_is_a_transport_error():
    async with http_stub(lambda request: CLOSE) as stub:
        client = HttpClient()
        with pytest.raises(HttpTransportError):
            await client.post(stub.url(), body=b"{}", request_timeout=5)
        await client.aclose()


async def test_an_answer_cut_off_midway_is_a_transport_error_and_not_sent_again():
    cut = b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"id"'

    async def handler(request):
        return cut

    async with http_stub(handler) as stub:
        client = HttpClient()
        first = asyncio.create_task(client.post(stub.url(), body=b"{}", request_timeout=5))
        await asyncio.sleep(0.1)
        stub.drop_idle_connections()
        with pytest.raises(HttpTransportError):
            await first
        await client.aclose()
    assert len(stub.requests) == 1


async def test_a_refused_connection_is_a_transport_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = HttpClient()
    with pytest.raises(HttpTransportError):
        await client.post(f"http://127.0.0.1:{port}/sms", body=b"{}", request_timeout=5)


async def test_what_is_not_http_or_too_big_is_refused():
    huge = f"HTTP/1.1 200 OK\r\ncontent-length: {MAX_RESPONSE_BYTES + 1}\r\n\r\n".encode() + (
        b"x" * (MAX_RESPONSE_BYTES + 1)
    )
    async with http_stub(lambda request: b"SSH-2.0-OpenSSH\r\n\r\n") as stub:
        client = HttpClient()
        with pytest.raises(ProtocolError):
            await client.post(stub.url(), body=b"{}", request_timeout=5)
        await client.aclose()
    endless_head = b"HTTP/1.1 200 OK\r\n" + b"x-filler: " + b"y" * (MAX_HEAD_BYTES + 1)
    async with http_stub(lambda request: endless_head) as stub:
        client = HttpClient()
        with pytest.raises(ProtocolError):
            await client.post(stub.url(), body=b"{}", request_timeout=5)
        await client.aclose()
    async with http_stub(lambda request: huge) as stub:
        client = HttpClient()
        with pytest.raises(ProtocolError):
            await client.post(stub.url(), body=b"{}", request_timeout=5)
        await client.aclose()


async def test_a_header_that_would_split_the_request_is_refused():
    client = HttpClient()
    with pytest.raises(ValueError, match="CR or LF"):
        await client.post(
            "http://127.0.0.1:9/sms", body=b"{}", headers={"X": "a\r\nB: c"}, request_timeout=1
        )
    with pytest.raises(ValueError, match="http"):
        await client.post("ftp://example.test/x", body=b"{}", request_timeout=1)
