"""The outside world of the topology test, in one small HTTP server of the test's own: the
SMS gateway and the bank (which count what they are handed, by idempotency key) and the
identity provider's JWKS (the API verifies RS256 tokens the test mints, as in production)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://idp.topology.test"
AUDIENCE = "socialwallet-api"


@dataclass
class Gateway:
    """What one fake gateway was handed: each message once, and how often it came again."""

    delay_seconds: float = 0.0
    accepted: dict[str, dict] = field(default_factory=dict)  # idempotency key -> payload
    repeats: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, payload: dict) -> str:
        key = payload["idempotency_key"]
        time.sleep(self.delay_seconds)
        with self.lock:
            if key in self.accepted:
                # The same message again (a relay that died before recording the answer):
                # the gateway knows it and answers with the same id, sending nothing.
                self.repeats[key] += 1
            else:
                self.accepted[key] = payload
        return f"gw-{uuid.uuid5(uuid.NAMESPACE_URL, key)}"


class Outside:
    """The fake SMS gateway (/sms), bank (/bank) and identity provider (/jwks.json)."""

    def __init__(self, *, sms_delay_seconds: float) -> None:
        self.sms = Gateway(delay_seconds=sms_delay_seconds)
        self.bank = Gateway()
        self.token = uuid.uuid4().hex
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        self._jwks = json.dumps({"keys": [{**jwk, "kid": "topology", "use": "sig"}]}).encode()
        outside = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/jwks.json":
                    self._answer(200, outside._jwks)
                else:
                    self._answer(404, b"{}")

            def do_POST(self) -> None:
                gateway = {"/sms": outside.sms, "/bank": outside.bank}.get(self.path)
                length = int(self.headers.get("content-length", "0"))
                payload = json.loads(self.rfile.read(length))
                if (
                    gateway is None
                    or self.headers.get("authorization") != f"Bearer {outside.token}"
                ):
                    self._answer(403, b"{}")
                    return
                self._answer(200, json.dumps({"id": gateway.take(payload)}).encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # quiet: the test reports what matters
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Outside:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def mint(self, *, role: str, subject: str) -> str:
        """A token of the identity provider for `subject` with `role`."""
        now = datetime.now(UTC)
        claims = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "roles": [role], "iat": now,
            "nbf": now, "exp": now + timedelta(hours=2), "jti": uuid.uuid4().hex,
        }  # fmt: skip
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": "topology"})
