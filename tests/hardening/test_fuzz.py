"""Fuzzing: schemathesis generates GraphQL operations from the schema and sends them to the
production app as an anonymous caller and as each role.

Every response must be below 500, and every error must carry one of the codes the API
documents, with a message free of stack traces and internals; an INTERNAL_SERVER_ERROR
(an unexpected exception, even masked) fails the test too. The app runs with prod settings
(masking, no introspection, no suggestions) but with trusted documents off: with them on,
every generated document would be refused at the door and the fuzzer would test nothing
else. FUZZ_EXAMPLES sets the examples per role (50 in the suite; docs/testing.md records a run
at 1,000 per role).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections import Counter
from datetime import date
from functools import partial
from types import SimpleNamespace

import graphql
import httpx
import pytest
import schemathesis
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis import GenerationMode
from schemathesis.graphql import nodes

from app import asgi
from app.asgi import create_app
from app.auth import DevIssuer, Role, TokenVerifier
from app.db import create_engine, create_session_factory
from app.demo import seed_demo
from app.migrate import upgrade_to_head
from app.settings import Settings
from familymap.iin import check_digit
from graphql_schema import errors
from graphql_schema.schema import build_schema

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
# The refusals the app declares (graphql_schema.errors), and the document refusals.
EXPECTED_CODES = {
    *errors.EXPECTED_CODES, "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED",
    "PERSONAL_DATA_OVER_GET",
}  # fmt: skip
LEAKS = re.compile(
    r"Traceback|File \"/|\w+(Error|Exception)\b|sqlalchemy|asyncpg|sqlite3|SELECT |INSERT ",
)
MERCHANT_ID = "5c0001a0-0000-4000-8000-000000000001"


def _iin_from(eleven: str) -> str | None:
    digit = check_digit(eleven)
    return None if digit is None else eleven + str(digit)


# IINs: mostly valid ones (so resolvers run), some that fail the check digit.
VALID_IINS = st.from_regex(r"[0-9]{11}", fullmatch=True).map(_iin_from).filter(bool)
schemathesis.graphql.scalar(
    "IIN", st.one_of(VALID_IINS, st.from_regex(r"[0-9]{12}", fullmatch=True)).map(nodes.String)
)
schemathesis.graphql.scalar(
    "Date", st.dates(date(1900, 1, 1), date(2100, 1, 1)).map(lambda d: nodes.String(d.isoformat()))
)


def introspection() -> dict:
    schema = build_schema(Settings(environment="dev"))._schema
    result = graphql.graphql_sync(schema, graphql.get_introspection_query())
    assert result.errors is None
    return result.data


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory, dev_issuer: DevIssuer):
    """A prod app on a database of its own (the demo registry), on an event loop of its own.

    The tests are synchronous (hypothesis drives them); the app and its engine live on a
    portal thread's loop, with their lifespan, as under a server.
    """
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    prod = Settings(environment="dev", database_url=f"sqlite+aiosqlite:///{db}").model_copy(
        update={
            "environment": "prod",
            "jwt_jwks_url": "http://127.0.0.1:9/jwks.json",
            "trusted_documents_only": False,
            "rate_limit_mutations_per_minute": 1_000_000,
            "qr_signing_key": SecretStr("fuzz-qr-key"),
        }
    )

    async def prepare() -> None:
        engine = create_engine(prod)
        try:
            await upgrade_to_head(engine)
            async with create_session_factory(engine)() as session, session.begin():
                await seed_demo(session, today=date.today())
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    verifier = TokenVerifier(
        issuer=prod.jwt_issuer, audience=prod.jwt_audience, leeway_seconds=0,
        public_key=dev_issuer.public_key,
    )  # fmt: skip
    original = asgi.build_token_verifier
    asgi.build_token_verifier = lambda _s, _i: verifier
    try:
        app = create_app(prod)
    finally:
        asgi.build_token_verifier = original
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
    ):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

        def post(path: str, **kwargs) -> httpx.Response:
            return portal.call(partial(client.post, path, **kwargs))

        yield SimpleNamespace(post=post)
        portal.call(client.aclose)


def callers(dev_issuer: DevIssuer) -> dict[str, dict[str, str]]:
    subjects = {
        Role.CITIZEN: "900101300126", Role.SCHOOL: MERCHANT_ID, Role.PHARMACY: MERCHANT_ID,
        Role.OPERATOR: "op-fuzz", Role.SOURCE_SYSTEM: "fuzz-system",
    }  # fmt: skip
    headers = {"anonymous": {}}
    for role, subject in subjects.items():
        token = dev_issuer.mint(roles=[role], subject=subject)
        headers[role.value] = {"authorization": f"Bearer {token}"}
    return headers


def problems_in(response) -> list[str]:
    """What is wrong with one response, if anything."""
    found = []
    if response.status_code >= 500:
        found.append(f"status {response.status_code}")
    if LEAKS.search(response.text):
        found.append("internals in the body")
    try:
        body = response.json()
    except json.JSONDecodeError:
        return [*found, "not JSON"] if response.status_code != 405 else found
    for error in body.get("errors", []):
        code = (error.get("extensions") or {}).get("code")
        if code not in EXPECTED_CODES:
            found.append(f"error code {code}: {error.get('message')!r}")
    return found


@pytest.mark.parametrize(
    "caller", ["anonymous", "CITIZEN", "SCHOOL", "PHARMACY", "OPERATOR", "SOURCE_SYSTEM"]
)
def test_fuzzed_operations_never_fail_or_leak(fuzz_app, dev_issuer, caller):
    schema = schemathesis.graphql.from_dict(introspection())
    operations = [result.ok() for result in schema.get_all_operations()]
    # Valid documents (to reach the resolvers) and invalid ones (to probe the door).
    strategy = st.one_of(
        [
            operation.as_strategy(generation_mode=mode)
            for operation in operations
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        ]
    )
    headers = callers(dev_issuer)[caller]
    seen: Counter[str] = Counter()
    failures: list[tuple[str, list[str]]] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=strategy,
        accept=st.sampled_from(["application/json", "application/graphql-response+json"]),
    )
    def send(case, accept) -> None:
        body = case.body if isinstance(case.body, str) else graphql.print_ast(case.body)
        response = fuzz_app.post(
            "/graphql",
            json={"query": body},
            headers={**headers, "accept": accept, "x-request-id": f"fuzz-{uuid.uuid4().hex}"},
        )
        seen["requests"] += 1
        seen[f"status {response.status_code}"] += 1
        payload = response.json() if response.status_code != 405 else {}
        errors = payload.get("errors", [])
        seen["no errors" if not errors else "with errors"] += 1
        # A response with `data` passed parsing, validation and the limits: execution began.
        seen["executed"] += "data" in payload
        for error in errors:
            seen[(error.get("extensions") or {}).get("code", "no code")] += 1
        if found := problems_in(response):
            failures.append((body[:300], found))

    send()
    print(f"fuzz {caller}: {dict(seen)}")
    assert seen["requests"] >= EXAMPLES * 0.9
    assert failures == []
    if caller != "anonymous":  # the fuzzer got past the door to execution, not only refusals
        assert seen["executed"] > 0
