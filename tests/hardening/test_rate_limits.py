"""Per-subject rate limits: the algorithm on Redis and in-process, across two workers, and
at the GraphQL edge (every mutation; a named bucket for one field)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from types import SimpleNamespace

import httpx
import pytest
import strawberry
from graphql import parse
from redis.asyncio import Redis
from starlette.datastructures import MutableHeaders

from app.asgi import create_app
from app.auth import Role
from app.rate_limit import (
    MERCHANT_MUTATIONS,
    MUTATIONS,
    InProcessRateLimiter,
    Limit,
    RedisRateLimiter,
    limits_from_settings,
)
from graphql_schema.errors import RateLimited
from graphql_schema.rate_limits import (
    RateLimitedField,
    _collected_cost,
    charge,
    mutation_cost,
    rate_limited,
)
from graphql_schema.schema import build_schema
from tests.clock import PINNED_TODAY
from tests.vouchers.vouchers_builders import family_with_pupil, school

REDIS_URL = "redis://127.0.0.1:6379/0"
CITIZEN_IIN = "900101300126"
LIMITS = {"mutation": Limit(3, 60), "qr_token": Limit(2, 60)}
RECORD = """
mutation Record($input: LifeEventInput!) {
  recordLifeEvent(input: $input) { __typename ... on LifeEventRefused { code } }
}
"""
UNKNOWN_PERSON_EVENT = {
    "input": {
        "eventId": "labour-1",
        "kind": "JOB_LOST",
        "occurredOn": PINNED_TODAY.isoformat(),
        "subjectIin": "880412300021",
        "registeredUnemployed": True,
    }
}


@pytest.fixture
async def redis_prefix():
    """A key prefix unique to this test; its keys are deleted afterwards."""
    prefix = f"sw:test:{uuid.uuid4().hex}:"
    yield prefix
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in redis.scan_iter(f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


def redis_limiter(prefix: str) -> RedisRateLimiter:
    """One worker's limiter: its own Redis connection, the shared key space."""
    return RedisRateLimiter(redis=Redis.from_url(REDIS_URL), key=b"k", prefix=prefix, limits=LIMITS)


@pytest.fixture(params=["redis", "in-process"])
async def limiter(request, redis_prefix):
    if request.param == "redis":
        made = redis_limiter(redis_prefix)
    else:
        made = InProcessRateLimiter(key=b"k", prefix=redis_prefix, limits=LIMITS)
    yield made
    await made.close()


async def test_a_subject_gets_its_limit_then_a_retry_after(limiter):
    decisions = [await limiter.hit(bucket="mutation", subject=CITIZEN_IIN) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    # One unit drips back every 20 s (3 per minute).
    assert 1 <= decisions[-1].retry_after_seconds <= 20


async def test_subjects_and_buckets_are_counted_apart(limiter):
    for _ in range(3):
        await limiter.hit(bucket="mutation", subject=CITIZEN_IIN)
    assert (await limiter.hit(bucket="mutation", subject="850615400016")).allowed
    assert (await limiter.hit(bucket="qr_token", subject=CITIZEN_IIN)).allowed
    assert not (await limiter.hit(bucket="mutation", subject=CITIZEN_IIN)).allowed


async def test_a_cost_larger_than_what_is_left_is_refused_whole(limiter):
    assert (await limiter.hit(bucket="mutation", subject=CITIZEN_IIN, cost=2)).allowed
    assert not (await limiter.hit(bucket="mutation", subject=CITIZEN_IIN, cost=2)).allowed
    assert (await limiter.hit(bucket="mutation", subject=CITIZEN_IIN, cost=1)).allowed


async def test_an_unknown_bucket_is_a_programming_error(limiter):
    with pytest.raises(ValueError, match="no rate limit bucket"):
        await limiter.hit(bucket="nope", subject=CITIZEN_IIN)


async def test_the_limit_holds_across_two_workers_sharing_redis(redis_prefix):
    # Given two workers, each with its own limiter and Redis connection
    first, second = redis_limiter(redis_prefix), redis_limiter(redis_prefix)
    try:
        # When one subject sends 20 requests at once, spread over both
        decisions = await asyncio.gather(
            *[
                (first if i % 2 else second).hit(bucket="mutation", subject=CITIZEN_IIN)
                for i in range(20)
            ]
        )
    finally:
        await first.close()
        await second.close()
    # Then exactly the limit (3) got through, not 3 per worker
    assert sum(d.allowed for d in decisions) == 3


async def test_redis_holds_no_iin(redis_prefix):
    limiter = redis_limiter(redis_prefix)
    redis = Redis.from_url(REDIS_URL)
    try:
        await limiter.hit(bucket="mutation", subject=CITIZEN_IIN)
        keys = [key.decode() async for key in redis.scan_iter(f"{redis_prefix}*")]
    finally:
        await limiter.close()
        await redis.aclose()
    assert len(keys) == 1 and CITIZEN_IIN not in keys[0]


# --- at the GraphQL edge ---------------------------------------------------------------


@pytest.fixture
async def limited_client(settings, engine, session_factory):
    limited = settings.model_copy(update={"rate_limit_mutations_per_minute": 2})
    app = create_app(limited, engine=engine, session_factory=session_factory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


@pytest.fixture
def resolver_calls(monkeypatch) -> list[str]:
    from graphql_schema.mutations import life_events

    calls: list[str] = []
    original = life_events.record_life_event

    async def spy(**kwargs):
        calls.append(kwargs["event_id"])
        return await original(**kwargs)

    monkeypatch.setattr(life_events, "record_life_event", spy)
    return calls


async def test_mutations_past_the_limit_are_refused_before_they_run(
    limited_client, token_for, resolver_calls
):
    headers = {
        "authorization": f"Bearer {token_for(Role.SOURCE_SYSTEM, 'gbdfl')}",
        "accept": "application/graphql-response+json",
    }
    payload = {"query": RECORD, "variables": UNKNOWN_PERSON_EVENT}
    # Given a limit of 2 mutations a minute, used up
    for _ in range(2):
        ok = await limited_client.post("/graphql", json=payload, headers=headers)
        assert ok.json()["data"]["recordLifeEvent"]["code"] == "UNKNOWN_PERSON"
    # When the same caller sends a third
    refused = await limited_client.post("/graphql", json=payload, headers=headers)
    # Then it is refused with a code and a hint, and the resolver did not run
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    [error] = refused.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == int(refused.headers["retry-after"])
    assert len(resolver_calls) == 2
    # and another caller is not affected
    other = {**headers, "authorization": f"Bearer {token_for(Role.SOURCE_SYSTEM, 'eisz')}"}
    fine = await limited_client.post("/graphql", json=payload, headers=other)
    assert fine.status_code == 200


async def test_a_canteens_token_has_the_larger_merchant_limit(limited_client, token_for):
    # Given the limit of 2 mutations a minute a person gets (limited_client)
    school = {"authorization": f"Bearer {token_for(Role.SCHOOL, str(uuid.uuid4()))}"}
    batch = {"query": "mutation { redeemMealsBatch(items: []) { __typename } }"}
    # When a canteen's staff token sends five, then they all reach the resolver (the school
    # is unknown here, so each is refused as data, not by the limit)
    for _ in range(5):
        body = (await limited_client.post("/graphql", json=batch, headers=school)).json()
        assert "errors" not in body, body


async def test_aliased_mutations_each_count(limited_client, token_for, resolver_calls):
    three = (
        "mutation($input: LifeEventInput!) { a: recordLifeEvent(input: $input) { __typename } "
        "b: recordLifeEvent(input: $input) { __typename } "
        "c: recordLifeEvent(input: $input) { __typename } }"
    )
    token = token_for(Role.SOURCE_SYSTEM, "gbdfl")
    response = await limited_client.post(
        "/graphql",
        json={"query": three, "variables": UNKNOWN_PERSON_EVENT},
        headers={"authorization": f"Bearer {token}"},
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert resolver_calls == []


async def test_root_fields_spread_through_fragments_each_count(
    limited_client, token_for, resolver_calls
):
    # Given a limit of 2 mutations a minute and three root fields hidden in fragments
    hidden = (
        "mutation($input: LifeEventInput!) { ...Two ... on Mutation { "
        "c: recordLifeEvent(input: $input) { __typename } } } "
        "fragment Two on Mutation { a: recordLifeEvent(input: $input) { __typename } ...One } "
        "fragment One on Mutation { b: recordLifeEvent(input: $input) { __typename } }"
    )
    token = token_for(Role.SOURCE_SYSTEM, "gbdfl")
    # When they are sent in one request
    response = await limited_client.post(
        "/graphql",
        json={"query": hidden, "variables": UNKNOWN_PERSON_EVENT},
        headers={"authorization": f"Bearer {token}"},
    )
    # Then the three count, the request is refused, and none of them ran
    assert response.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert resolver_calls == []


async def test_skipped_root_fields_do_not_count(limited_client, token_for, resolver_calls):
    # Given a limit of 2 and three root fields, one of them skipped
    two_of_three = (
        "mutation($input: LifeEventInput!, $no: Boolean!) { ...Fields } "
        "fragment Fields on Mutation { a: recordLifeEvent(input: $input) { __typename } "
        "b: recordLifeEvent(input: $input) { __typename } "
        "c: recordLifeEvent(input: $input) @skip(if: $no) { __typename } }"
    )
    token = token_for(Role.SOURCE_SYSTEM, "gbdfl")
    # When it is sent
    response = await limited_client.post(
        "/graphql",
        json={"query": two_of_three, "variables": {**UNKNOWN_PERSON_EVENT, "no": True}},
        headers={"authorization": f"Bearer {token}"},
    )
    # Then the two that run are counted, which the limit allows
    assert "errors" not in response.json(), response.json()
    assert len(resolver_calls) == 2


def meal_items(count: int) -> list[dict]:
    return [
        {"idempotencyKey": uuid.uuid4().hex, "mealType": "LUNCH", "childId": "1",
         "servedOn": PINNED_TODAY.isoformat()}
        for _ in range(count)
    ]  # fmt: skip


async def test_a_batch_counts_as_many_as_its_items(settings, engine, session_factory, token_for):
    # Given a canteen's limit of 1,500 meals a minute
    limited = settings.model_copy(update={"rate_limit_merchant_mutations_per_minute": 1500})
    app = create_app(limited, engine=engine, session_factory=session_factory)
    school = {"authorization": f"Bearer {token_for(Role.SCHOOL, str(uuid.uuid4()))}"}
    batch = (
        "mutation($items: [RedeemMealInput!]!) { redeemMealsBatch(items: $items) { __typename } }"
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        # When it sends a batch of 1,000, then another
        first = await c.post(
            "/graphql", json={"query": batch, "variables": {"items": meal_items(1000)}},
            headers=school,
        )  # fmt: skip
        second = await c.post(
            "/graphql", json={"query": batch, "variables": {"items": meal_items(1000)}},
            headers=school,
        )  # fmt: skip
    # Then the first reaches the resolver and the second is over the limit: 2,000 meals
    assert "errors" not in first.json(), first.json()
    [error] = second.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    # 1,000 units drip back in 40 s (1,500 a minute); 500 of the 1,500 were left
    assert error["extensions"]["retryAfter"] == 20


async def test_qr_codes_past_their_limit_are_refused(
    settings, engine, session_factory, session, token_for
):
    # Given a parent whose child has a meal voucher, and a limit of 3 QR codes a minute
    _, parent, child = await family_with_pupil(session)
    await school(session)
    await session.commit()
    limited = settings.model_copy(update={"rate_limit_qr_tokens_per_minute": 3})
    app = create_app(limited, engine=engine, session_factory=session_factory)
    citizen = {"authorization": f"Bearer {token_for(Role.CITIZEN, parent.iin)}"}
    qr = "mutation($child: ID!) { mealQrToken(childId: $child) { __typename } }"
    consent = "mutation($child: ID!) { consentToMealVoucher(childId: $child) { __typename } }"
    variables = {"child": str(child.id)}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        consented = await c.post(
            "/graphql", json={"query": consent, "variables": variables}, headers=citizen
        )
        assert consented.json()["data"]["consentToMealVoucher"]["__typename"] == (
            "MealVoucherIssued"
        )
        # When the app asks for five QR codes in a row
        answers = [
            await c.post("/graphql", json={"query": qr, "variables": variables}, headers=citizen)
            for _ in range(5)
        ]
    # Then three are issued and the other two are refused with a Retry-After
    bodies = [answer.json() for answer in answers]
    assert [b["data"]["mealQrToken"]["__typename"] for b in bodies[:3]] == ["MealQrCode"] * 3
    for answer, body in zip(answers[3:], bodies[3:], strict=True):
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert 1 <= int(answer.headers["retry-after"]) <= 20


def test_every_bucket_is_charged_somewhere(settings):
    # Given the buckets the settings size, and the schema
    schema = build_schema(settings)
    # When we collect the buckets charged: the edge's two, and every rate_limited field's
    charged = {MUTATIONS, MERCHANT_MUTATIONS}
    for graphql_type in schema._schema.type_map.values():
        for field in getattr(graphql_type, "fields", {}).values():
            definition = (field.extensions or {}).get("strawberry-definition")
            charged |= {
                extension.bucket
                for extension in getattr(definition, "extensions", None) or ()
                if isinstance(extension, RateLimitedField)
            }
    # Then no bucket is a setting that limits nothing
    assert set(limits_from_settings(settings)) <= charged


async def test_a_named_bucket_limits_one_field():
    # Given a field in the qr_token bucket (how the vouchers' QR-token mutation uses it)
    @strawberry.type
    class Query:
        @strawberry.field(extensions=[rate_limited("qr_token")])
        async def qr_token(self) -> str:
            return "token"

    schema = strawberry.Schema(query=Query)
    context = SimpleNamespace(
        principal=SimpleNamespace(subject=CITIZEN_IIN),
        rate_limiter=InProcessRateLimiter(key=b"k", prefix="t:", limits=LIMITS),
        response=SimpleNamespace(headers=MutableHeaders()),
    )
    # When it is called three times with a limit of two
    results = [await schema.execute("{ qrToken }", context_value=context) for _ in range(3)]
    # Then the third is RATE_LIMITED with a Retry-After
    assert [r.data for r in results[:2]] == [{"qrToken": "token"}] * 2
    assert results[2].errors[0].extensions["code"] == "RATE_LIMITED"
    assert context.response.headers["retry-after"] == str(
        results[2].errors[0].extensions["retryAfter"]
    )


async def test_charge_is_a_no_op_without_a_limiter_or_a_caller():
    await charge(SimpleNamespace(principal=None, rate_limiter=None), bucket="mutation")
    with pytest.raises(RateLimited):
        context = SimpleNamespace(
            principal=SimpleNamespace(subject="x"),
            rate_limiter=InProcessRateLimiter(key=b"k", prefix="t:", limits=LIMITS),
            response=SimpleNamespace(headers=MutableHeaders()),
        )
        for _ in range(3):
            await charge(context, bucket="qr_token")


async def test_settings_choose_redis_or_the_in_process_fallback(settings):
    from app.rate_limit import build_rate_limiter

    fallback = build_rate_limiter(settings)
    shared = build_rate_limiter(settings.model_copy(update={"redis_url": REDIS_URL}))
    try:
        assert isinstance(fallback, InProcessRateLimiter)
        assert isinstance(shared, RedisRateLimiter)
        assert (await shared.hit(bucket="qr_token", subject=f"probe-{uuid.uuid4()}")).allowed
    finally:
        await shared.close()


# --- when Redis cannot be reached --------------------------------------------------------


def closed_port_url() -> str:
    """A Redis URL on a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def outage_warnings(caplog) -> list[dict]:
    return [
        record.msg
        for record in caplog.records
        if isinstance(record.msg, dict)
        and record.msg.get("event") == "rate_limit.redis_unavailable"
        and record.levelname == "WARNING"
    ]


async def test_a_dead_redis_falls_back_to_the_in_process_limit(settings, caplog):
    from app import metrics
    from app.rate_limit import build_rate_limiter

    # Given REDIS_URL on a closed port and a limit of 3 mutations a minute
    dead = settings.model_copy(
        update={"redis_url": closed_port_url(), "rate_limit_mutations_per_minute": 3}
    )
    limiter = build_rate_limiter(dead)
    before = metrics.REGISTRY.get_sample_value("socialwallet_rate_limit_unavailable_total")
    # When one subject sends six
    try:
        with caplog.at_level("INFO", logger="socialwallet.rate_limit"):
            decisions = [
                await limiter.hit(bucket="mutation", subject=CITIZEN_IIN) for _ in range(6)
            ]
            healthy = await limiter.healthy()
    finally:
        await limiter.close()
    # Then the limit holds in process: three pass, three are refused
    assert [d.allowed for d in decisions] == [True] * 3 + [False] * 3
    assert not healthy
    # and the outage is logged once, at warning, and every check made in process is counted
    [warning] = outage_warnings(caplog)
    assert warning["error"] == "ConnectionError"
    after = metrics.REGISTRY.get_sample_value("socialwallet_rate_limit_unavailable_total")
    assert after == before + 6


async def test_each_outage_is_logged_once_and_redis_is_tried_again(redis_prefix, caplog):
    from redis.exceptions import ConnectionError as RedisConnectionError

    # Given a limiter on a live Redis, with a clock we move, whose script we can break
    now = [0.0]
    limiter = RedisRateLimiter(
        redis=Redis.from_url(REDIS_URL), key=b"k", prefix=redis_prefix, limits=LIMITS,
        retry_seconds=5, clock=lambda: now[0],
    )  # fmt: skip
    script, calls = limiter._script, []

    async def down(**kwargs):
        calls.append(now[0])
        raise RedisConnectionError("connection refused")

    try:
        with caplog.at_level("INFO", logger="socialwallet.rate_limit"):
            # When Redis goes down for a while: hits at 0, 1, 2 and 6 seconds
            limiter._script = down
            for at in (0, 1, 2, 6):
                now[0] = at
                await limiter.hit(bucket="qr_token", subject=CITIZEN_IIN)
            first_outage = len(outage_warnings(caplog))
            degraded = limiter.degraded
            # and comes back, then goes down again
            limiter._script = script
            now[0] = 12
            assert (await limiter.hit(bucket="qr_token", subject="850615400016")).allowed
            recovered = not limiter.degraded
            limiter._script = down
            now[0] = 13
            await limiter.hit(bucket="qr_token", subject=CITIZEN_IIN)
    finally:
        await limiter.close()
    # Then Redis was tried at the outage's start and once more after 5 s, not on every hit
    assert calls == [0, 6, 13]
    # and each outage was logged once
    assert first_outage == 1 and degraded and recovered
    assert len(outage_warnings(caplog)) == 2


async def test_readyz_and_the_api_hold_the_limits_without_redis(
    settings, engine, session_factory, token_for, resolver_calls
):
    # Given an app whose REDIS_URL is on a closed port, with a limit of 2 mutations a minute
    dead = settings.model_copy(
        update={"redis_url": closed_port_url(), "rate_limit_mutations_per_minute": 2}
    )
    app = create_app(dead, engine=engine, session_factory=session_factory)
    headers = {"authorization": f"Bearer {token_for(Role.SOURCE_SYSTEM, 'gbdfl')}"}
    payload = {"query": RECORD, "variables": UNKNOWN_PERSON_EVENT}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        # When a caller sends three mutations and the probe asks whether the app is ready
        bodies = [
            (await c.post("/graphql", json=payload, headers=headers)).json() for _ in range(3)
        ]
        ready = await c.get("/readyz")
    await app.state.rate_limiter.close()
    # Then the third is refused and never runs
    assert bodies[2]["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert len(resolver_calls) == 2
    # and the app is ready but says its rate limits are degraded
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "up", "degraded": ["rate_limits"]}


async def test_readyz_shows_no_degradation_with_a_live_redis(settings, engine, session_factory):
    live = settings.model_copy(update={"redis_url": REDIS_URL})
    app = create_app(live, engine=engine, session_factory=session_factory)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ready = await c.get("/readyz")
    await app.state.rate_limiter.close()
    assert ready.json() == {"status": "ok", "database": "up"}


BATCH_ITEMS = "[RedeemMealInput!]!"
LIFE_EVENT = "recordLifeEvent(input: $input) { __typename }"


@pytest.mark.parametrize(
    ("document", "variables", "units"),
    [
        (f"mutation($input: LifeEventInput!) {{ {LIFE_EVENT} }}", UNKNOWN_PERSON_EVENT, 1),
        (f"mutation($input: LifeEventInput!) {{ a: {LIFE_EVENT} b: {LIFE_EVENT} }}",
         UNKNOWN_PERSON_EVENT, 2),
        # one response key twice: the executor merges them into one field
        (f"mutation($input: LifeEventInput!) {{ {LIFE_EVENT} {LIFE_EVENT} }}",
         UNKNOWN_PERSON_EVENT, 1),
        (f"mutation($items: {BATCH_ITEMS}) {{ redeemMealsBatch(items: $items) {{ __typename }} }}",
         {"items": meal_items(7)}, 7),
        (f"mutation($items: {BATCH_ITEMS}) {{ redeemMealsBatch(items: $items) {{ __typename }} }}",
         {"items": []}, 1),
        # one item given alone is coerced into a list of one
        (f"mutation($items: {BATCH_ITEMS}) {{ redeemMealsBatch(items: $items) {{ __typename }} }}",
         {"items": meal_items(1)[0]}, 1),
        ("mutation { redeemMealsBatch(items: []) { __typename } }", {}, 1),
        (f"mutation($items: {BATCH_ITEMS}, $no: Boolean!) {{ "
         f"a: redeemMealsBatch(items: $items) {{ __typename }} "
         f"b: redeemMealsBatch(items: $items) @skip(if: $no) {{ __typename }} }}",
         {"items": meal_items(3), "no": True}, 3),
    ],
)  # fmt: skip
def test_the_documents_plan_counts_what_the_executor_collects(settings, document, variables, units):
    # Given a mutation whose cost is read from its document (or, when the document alone
    # does not decide, from graphql-core's field collection)
    schema = build_schema(settings)
    context = SimpleNamespace(
        schema=schema, query=document, graphql_document=parse(document),
        variables=variables, operation_name=None,
    )  # fmt: skip
    # Then both ways give the units the executor will run
    assert mutation_cost(context) == _collected_cost(context) == units
