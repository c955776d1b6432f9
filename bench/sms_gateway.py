"""A local fake SMS gateway for `socialwallet bench offers`: an HTTP/1.1 server on a loopback
port answering `wallet.sms.HttpGateway`'s POST {to, text, sender, idempotency_key} as a real
gateway does, with some slow and some failed answers.

Like a real gateway it honours the idempotency key: a key it has taken before is answered
with the same id and not delivered again. What it counts (GET /stats):

* `delivered`: messages taken (distinct keys answered 2xx);
* `repeated`: requests with a key already taken (at-least-once resends, e.g. after a relay
  was killed between sending and recording) - answered, not delivered again;
* `duplicates`: requests with a key whose earlier request was still being answered: two
  sends of one message at the same time, which a real gateway may deliver twice;
* `slow`, `unavailable` (503), `throttled` (429), `refused` (400): the answers it made up;
* `cpu_ms`: the CPU its process used so far.

Which answer a message gets is decided by its key (a hash), so runs are repeatable: about
1 % are slow (250 ms), 2 % answer 503 and 0.5 % answer 429 on their first attempt (a retry
succeeds), 0.1 % are refused for good (an invalid number).
"""

from __future__ import annotations

import asyncio
import json
import resource
import zlib
from collections import Counter
from typing import Any

import uvloop

SLOW_SECONDS = 0.25


def _answer_for(key: str, attempt: int) -> str:
    """What the gateway does with a message: ok, slow, unavailable, throttled or refused."""
    bucket = zlib.crc32(key.encode()) % 1000
    if bucket < 1:
        return "refused"
    if attempt == 1 and bucket < 21:
        return "unavailable"
    if attempt == 1 and bucket < 26:
        return "throttled"
    if bucket < 36:
        return "slow"
    return "ok"


class FakeGateway:
    """The gateway's state: ids of the keys taken, in-flight keys, counters."""

    def __init__(self) -> None:
        self.taken: dict[str, str] = {}
        self.in_flight: set[str] = set()
        self.attempts: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()

    async def answer(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one send."""
        key = str(payload.get("idempotency_key") or "")
        if not key or not str(payload.get("to", "")).startswith("+7"):
            return 400, {"error": "bad request"}
        self.counts["requests"] += 1
        if key in self.in_flight:
            self.counts["duplicates"] += 1
        if key in self.taken:
            self.counts["repeated"] += 1
            return 200, {"id": self.taken[key]}
        self.attempts[key] += 1
        kind = _answer_for(key, self.attempts[key])
        if kind == "refused":
            self.counts["refused"] += 1
            return 400, {"error": "invalid destination"}
        if kind in ("unavailable", "throttled"):
            self.counts[kind] += 1
            return (503 if kind == "unavailable" else 429), {"error": kind}
        self.in_flight.add(key)
        try:
            if kind == "slow":
                self.counts["slow"] += 1
                await asyncio.sleep(SLOW_SECONDS)
            gateway_id = f"gw-{len(self.taken) + 1}"
            self.taken[key] = gateway_id
            self.counts["delivered"] += 1
            return 200, {"id": gateway_id}
        finally:
            self.in_flight.discard(key)

    def stats(self) -> dict[str, int]:
        names = ("requests", "delivered", "repeated", "duplicates", "slow", "unavailable",
                 "throttled", "refused")  # fmt: skip
        usage = resource.getrusage(resource.RUSAGE_SELF)
        # The gateway's own CPU, so that the benchmark can tell it from the relay's.
        cpu_ms = round((usage.ru_utime + usage.ru_stime) * 1000)
        return {**{name: self.counts[name] for name in names}, "cpu_ms": cpu_ms}


async def _serve_connection(
    gateway: FakeGateway, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in header_lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if request_line.startswith("GET /stats"):
                status, answer = 200, gateway.stats()
            else:
                status, answer = await gateway.answer(json.loads(body or b"{}"))
            data = json.dumps(answer).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n"
                f"content-length: {len(data)}\r\n\r\n".encode()
                + data
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def start_gateway(gateway: FakeGateway, port: int = 0) -> asyncio.Server:
    """Serve `gateway` on 127.0.0.1:`port` (0: any free port) in the running loop."""
    return await asyncio.start_server(
        lambda r, w: _serve_connection(gateway, r, w), "127.0.0.1", port, backlog=1024
    )


def serve_gateway(port: int, ready: Any) -> None:
    """Run the gateway on 127.0.0.1:`port` until the process is ended (a child's target)."""

    async def main() -> None:
        server = await start_gateway(FakeGateway(), port)
        ready.set()
        async with server:
            await server.serve_forever()

    # On uvloop, so that the fake gateway takes less of the cores it shares with the relay.
    uvloop.run(main())
