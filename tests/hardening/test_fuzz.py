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
import base64
import json
import logging
import os
import re
import time
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
from app.demo import DEMO_PHARMACY_ID, DEMO_SCHOOL_ID, demo_citizen_iin, seed_demo
from app.migrate import upgrade_to_head
from app.settings import Settings
from app.web_client import OPERATIONS_DIR as CLIENT_OPERATIONS_DIR
from familymap.iin import check_digit
from graphql_schema import errors
from graphql_schema.schema import build_schema
from graphql_schema.trusted_documents import OPERATIONS_DIR, OperationRegistry

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


def _wide(text: str) -> str:
    """ASCII digits in full width (U+FF10..): digits to Python's int(), not to the API."""
    return "".join(chr(0xFF10 + int(c)) if c.isascii() and c.isdigit() else c for c in text)


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


HUGE = str(2**64)
# Values that were 500s once (issue 14 item 8), drawn beside ordinary ones.
ADVERSARIAL_IDS = st.one_of(
    st.sampled_from(
        [HUGE, str(2**63), "-1", str(-(2**63) - 1), "１２", "٣", "", " 1", "1\x00", "1_0",
         _cursor(f"Offer:{HUGE}"), _cursor("Offer:１"), _cursor("Nope:1")]
    ),
    st.integers(-(2**70), 2**70).map(str),
)  # fmt: skip
ADVERSARIAL_TEXT = st.sampled_from(
    ["\x00", "RX-1\x00", "garbage", _cursor(f"arrayconnection:{HUGE}"), _cursor("arrayconnection:-1"),
     _cursor("x:1"), "１２３", "KZ８６125KZT5004100100", "КZ86125KZT5004100100", "9999-12-31",
     "x" * 3000]
)  # fmt: skip
ADVERSARIAL_DATES = st.sampled_from(
    ["9999-12-31", "0001-01-01", "1899-12-31", "3000-01-01", _wide("2026-01-01"), "2026-02-30",
     "20261118", "", "2026-1-1"]
)  # fmt: skip
IDS = st.one_of(st.integers(1, 50).map(str), ADVERSARIAL_IDS)
TEXTS = st.one_of(st.text(max_size=20), st.text(max_size=20), ADVERSARIAL_TEXT)
DATES = st.one_of(
    st.dates(date(1900, 1, 1), date(2100, 1, 1)).map(date.isoformat), ADVERSARIAL_DATES
)
IINS = st.one_of(VALID_IINS, st.from_regex(r"[0-9]{12}", fullmatch=True), VALID_IINS.map(_wide))
schemathesis.graphql.scalar("IIN", IINS.map(nodes.String))
schemathesis.graphql.scalar("Date", DATES.map(nodes.String))
schemathesis.graphql.scalar("ID", IDS.map(nodes.String))
schemathesis.graphql.scalar("String", TEXTS.map(nodes.String))


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

    async def prepare() -> str:
        engine = create_engine(prod)
        try:
            await upgrade_to_head(engine)
            async with create_session_factory(engine)() as session, session.begin():
                await seed_demo(session, today=date.today())
                return await demo_citizen_iin(session)
        finally:
            await engine.dispose()

    citizen_iin = asyncio.run(prepare())
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

        yield SimpleNamespace(post=post, citizen_iin=citizen_iin)
        portal.call(client.aclose)


def callers(dev_issuer: DevIssuer) -> dict[str, dict[str, str]]:
    subjects = {
        Role.CITIZEN: "900101300126", Role.SCHOOL: MERCHANT_ID, Role.PHARMACY: MERCHANT_ID,
        Role.OPERATOR: "op-fuzz", Role.SOURCE_SYSTEM: "fuzz-system",
    }  # fmt: skip
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
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
def test_fuzzed_operations_never_fail_or_leak(fuzz_app, dev_issuer, caller, caplog):
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

    with caplog.at_level(logging.WARNING):
        send()
    print(f"fuzz {caller}: {dict(seen)}")
    assert seen["requests"] >= EXAMPLES * 0.9
    assert failures == []
    # and nothing was logged as an error, or with a traceback (refusals are warnings)
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert logged == [], [r.getMessage()[:300] for r in logged[:5]]
    if caller != "anonymous":  # the fuzzer got past the door to execution, not only refusals
        assert seen["executed"] > 0


# --- registered operations, adversarial variables ----------------------------------------------

ADVERSARIAL_EXAMPLES = int(os.environ.get("FUZZ_ADVERSARIAL_EXAMPLES", "25"))
# Who sends an operation: the role that owns it, so the variables reach its resolver.
OWNER = {
    "RecordLifeEvent": Role.SOURCE_SYSTEM, "OfferFunnel": Role.OPERATOR, "Person": Role.OPERATOR,
    "RedeemMeal": Role.SCHOOL, "SchoolMeals": Role.SCHOOL, "SchoolPupils": Role.SCHOOL,
    "DispenseMedicine": Role.PHARMACY, "Prescription": Role.PHARMACY,
    "PharmacyDispensings": Role.PHARMACY,
}  # fmt: skip
SCALARS = {
    "ID": IDS,
    "String": st.one_of(TEXTS, st.just("\ud800")),  # a lone surrogate: JSON can carry one
    "Date": DATES,
    "DateTime": st.one_of(st.just("9999-12-31T23:59:59+00:00"), st.text(max_size=30)),
    "IIN": IINS,
    "Int": st.one_of(st.integers(-5, 1000), st.sampled_from([2**31, -(2**31) - 1, 2**53])),
    "Tiyn": st.one_of(st.integers(-5, 10**9), st.sampled_from([2**53, 2**63, -(2**63)])),
    "Boolean": st.booleans(),
    "Float": st.floats(allow_nan=False, allow_infinity=False),
}


def _values(input_type: graphql.GraphQLInputType) -> st.SearchStrategy:
    """Adversarial JSON values for a declared variable type (nullable types sometimes null)."""
    if isinstance(input_type, graphql.GraphQLNonNull):
        return _values_of(input_type.of_type)
    return st.one_of(st.none(), _values_of(input_type))


def _values_of(input_type: graphql.GraphQLInputType) -> st.SearchStrategy:
    if isinstance(input_type, graphql.GraphQLList):
        return st.lists(_values(input_type.of_type), max_size=3)
    if isinstance(input_type, graphql.GraphQLInputObjectType):
        fields = input_type.fields
        required = {
            n: _values(f.type) for n, f in fields.items() if graphql.is_required_input_field(f)
        }
        optional = {n: _values(f.type) for n, f in fields.items() if n not in required}
        return st.fixed_dictionaries(required, optional=optional)
    if isinstance(input_type, graphql.GraphQLEnumType):
        return st.one_of(st.sampled_from(list(input_type.values)), st.just("NOT_A_VALUE"))
    return SCALARS[input_type.name]


def test_registered_operations_refuse_adversarial_variables(fuzz_app, dev_issuer, caplog):
    # Given every registered operation, sent by the role that owns it (a citizen otherwise)
    schema = build_schema(Settings(environment="dev"))._schema
    registry = OperationRegistry.load(OPERATIONS_DIR, CLIENT_OPERATIONS_DIR)
    subjects = {
        Role.CITIZEN: fuzz_app.citizen_iin, Role.SCHOOL: str(DEMO_SCHOOL_ID),
        Role.PHARMACY: str(DEMO_PHARMACY_ID), Role.OPERATOR: "op-fuzz",
        Role.SOURCE_SYSTEM: "fuzz-system",
    }  # fmt: skip
    tokens = {role: dev_issuer.mint(roles=[role], subject=s) for role, s in subjects.items()}
    seen: Counter[str] = Counter()
    failures: list[tuple[str, dict, list[str]]] = []

    def sender(document, token: str, variables: st.SearchStrategy):
        @settings(
            max_examples=ADVERSARIAL_EXAMPLES, deadline=None, database=None,
            suppress_health_check=list(HealthCheck),
        )  # fmt: skip
        @given(values=variables)
        def send(values) -> None:
            # When the operation is sent with them (JSON escapes what httpx cannot encode)
            response = fuzz_app.post(
                "/graphql",
                content=json.dumps({"query": document.text, "variables": values}),
                headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
            )
            seen["requests"] += 1
            seen[f"status {response.status_code}"] += 1
            for error in response.json().get("errors", []):
                seen[(error.get("extensions") or {}).get("code", "no code")] += 1
            if found := problems_in(response):
                failures.append((document.name, values, found))

        return send

    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        for document in registry.documents:
            operation = graphql.parse(document.text).definitions[0]
            variables = st.fixed_dictionaries(
                {
                    d.variable.name.value: _values(graphql.type_from_ast(schema, d.type))
                    for d in operation.variable_definitions or ()
                }
            )
            token = tokens[OWNER.get(document.name, Role.CITIZEN)]

            sender(document, token, variables)()
    elapsed = time.monotonic() - started
    print(f"adversarial variables: {dict(seen)} in {elapsed:.1f} s")
    # Then nothing failed unexpectedly, and the log holds no traceback and no error
    assert failures == [], failures[:5]
    assert seen["requests"] >= len(registry.documents) * ADVERSARIAL_EXAMPLES * 0.5
    assert seen["BAD_USER_INPUT"] > 0  # the adversarial values were sent, and refused
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert logged == [], [r.getMessage()[:300] for r in logged[:5]]
