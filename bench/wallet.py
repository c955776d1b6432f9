"""`socialwallet bench wallet`: the wallet query through GraphQL against a hand-written endpoint.

Both paths serve the same data from the same rows with the same statements: the caller's
household (caller, family, members: one SELECT), the spending lines of the year (one), the
benefit payments (one); both call the same domain functions (wallet.view, wallet.spending)
for visibility, welfare, entitlements with reasons and totals. The baseline is a plain
Starlette endpoint that builds the JSON by hand; the difference between the two is the price
of GraphQL (parsing, validation, per-field resolution, DataLoaders, Relay connections).

The server runs in a child process (uvicorn, one worker, loopback port) so the load
generator (httpx.AsyncClient at a fixed concurrency for a fixed duration) does not share its
event loop. Statements per request are counted in this process on one request of each kind
through the ASGI app, with a `before_cursor_execute` listener on the engine.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.asgi import create_app
from app.auth import AuthenticatedUser, DevIssuer, Role
from app.db import create_session_factory
from app.logging import configure_logging
from app.settings import Settings
from familymap.registry_load import load_synthetic_registry
from familymap.tables import Person
from wallet import ledger, view
from wallet import spending as spending_domain
from wallet.households import read_households
from wallet.i18n import negotiate, programme_title
from wallet.offers import offers_of_families
from wallet.texts import CATEGORIES, text

BASELINE_PATH = "/baseline/wallet"
ENTITLEMENTS_PAGE = 20
PAYMENTS_PAGE = 10

WALLET_QUERY = """
query Wallet($year: Int!) {
  me {
    language
    person { personId firstName lastName iin visibility }
    family { id region members { personId firstName lastName role iin birthDate visibility isCaller } }
    welfare { level levelTitle total criteria { criterion title score explanation } }
    entitlements(first: 20) {
      edges { node {
        id programme kind personId status statusTitle title amountTiyn periodStart periodEnd
        reference reasons { condition label value threshold passed text }
      } }
      pageInfo { hasNextPage endCursor }
    }
    spending(year: $year) {
      year month totalTiyn
      byCategory { category title amountTiyn }
      byMember { personId amountTiyn }
      byMonth { month amountTiyn }
      services { reason count }
    }
    payments(first: 10) { edges { node { id programme title personId amountTiyn paidAt reversed } } }
  }
}
"""


# --- The baseline: the same rows, the same domain functions, JSON by hand ------------------


def _member(m: view.MemberView) -> dict[str, Any]:
    return {
        "personId": str(m.person_id), "firstName": m.first_name, "lastName": m.last_name,
        "role": m.role, "iin": m.iin, "visibility": m.visibility.value,
        "birthDate": m.birth_date.isoformat() if m.birth_date else None, "isCaller": m.is_caller,
    }  # fmt: skip


async def baseline_wallet(request: Request) -> Response:
    """The wallet as hand-written JSON (the benchmark's baseline; not part of the API)."""
    user = request.scope.get("user")
    if not isinstance(user, AuthenticatedUser) or Role.CITIZEN not in user.principal.roles:
        return JSONResponse({"error": "citizens only"}, status_code=403)
    iin = user.principal.subject
    language = negotiate(request.headers.get("accept-language"))
    year = int(request.query_params.get("year", datetime.now(UTC).year))
    factory = request.app.state.session_factory
    async with factory() as session:
        household = (await read_households(session=session, iins=[iin])).get(iin)
    if household is None:
        return JSONResponse({"me": None})
    caller, members = household.caller, household.members
    visible = view.fully_visible_ids(caller=caller, members=members)
    evaluation = view.evaluate(
        family=household.family, members=members, on=datetime.now(UTC).date()
    )
    welfare = view.welfare_view(assessment=evaluation.welfare, language=language)
    start, end = spending_domain.period_bounds(year=year)

    # The reads that depend only on the family run concurrently, each in its own session,
    # as the GraphQL path's DataLoaders do.
    async def read_lines() -> list[spending_domain.SpendingLine]:
        async with factory() as session:
            return await spending_domain.spending_lines(
                session=session, family_ids=[caller.family_id], start=start, end=end
            )

    async def read_payments() -> list[spending_domain.Payment]:
        async with factory() as session:
            return await spending_domain.family_payments(
                session=session, family_ids=[caller.family_id]
            )

    async def read_offers() -> list[Any]:
        async with factory() as session:
            return await offers_of_families(session=session, family_ids=[caller.family_id])

    lines, payments, offers = await asyncio.gather(read_lines(), read_payments(), read_offers())
    items = view.entitlement_statuses(
        evaluation=evaluation,
        language=language,
        visible_person_ids=visible,
        offer_states=view.offer_states(offers),
    )
    spent = spending_domain.for_caller(
        spending=spending_domain.summarise(
            family_id=caller.family_id, year=year, month=None, lines=lines
        ),
        visible_person_ids=visible,
    )
    page = items[:ENTITLEMENTS_PAGE]
    shown_payments = [p for p in payments if p.person_id is None or p.person_id in visible]
    body = {
        "language": language.upper(),
        "person": {
            k: v
            for k, v in _member(view.visible_members(caller=caller, members=[caller])[0]).items()
            if k in ("personId", "firstName", "lastName", "iin", "visibility")
        },
        "family": {
            "id": str(household.family.id), "region": household.family.region,
            "members": [_member(m) for m in view.visible_members(caller=caller, members=members)],
        },
        "welfare": {
            "level": welfare.level, "levelTitle": welfare.level_title, "total": welfare.total,
            "criteria": [
                {"criterion": c.criterion, "title": c.title, "score": c.score,
                 "explanation": c.explanation}
                for c in welfare.criteria
            ],
        },
        "entitlements": {
            "edges": [
                {"node": {
                    "id": e.key, "programme": e.programme, "kind": e.kind,
                    "personId": str(e.person_id) if e.person_id else None,
                    "status": e.status.value, "statusTitle": e.status_title, "title": e.title,
                    "amountTiyn": e.amount_tiyn,
                    "periodStart": e.period_start.isoformat() if e.period_start else None,
                    "periodEnd": e.period_end.isoformat() if e.period_end else None,
                    "reference": e.reference,
                    "reasons": [
                        {"condition": r.condition, "label": r.label, "value": r.value,
                         "threshold": r.threshold, "passed": r.passed, "text": r.text}
                        for r in e.reasons
                    ],
                }}
                for e in page
            ],
            "pageInfo": {"hasNextPage": len(items) > len(page),
                         "endCursor": page[-1].key if page else None},
        },
        "spending": {
            "year": spent.year, "month": spent.month, "totalTiyn": spent.total_tiyn,
            "byCategory": [
                {"category": t.key, "title": text(CATEGORIES, str(t.key), language),
                 "amountTiyn": t.amount_tiyn}
                for t in spent.by_category
            ],
            "byMember": [
                {"personId": str(t.key) if t.key is not None else None, "amountTiyn": t.amount_tiyn}
                for t in spent.by_member
            ],
            "byMonth": [{"month": t.key, "amountTiyn": t.amount_tiyn} for t in spent.by_month],
            "services": [{"reason": t.key, "count": t.amount_tiyn} for t in spent.services],
        },
        "payments": {
            "edges": [
                {"node": {
                    "id": p.transfer_id, "programme": p.programme,
                    "title": programme_title(p.programme, language) if p.programme else None,
                    "personId": str(p.person_id) if p.person_id else None,
                    "amountTiyn": p.amount_tiyn, "paidAt": p.paid_at.isoformat(),
                    "reversed": p.reversed,
                }}
                for p in shown_payments[:PAYMENTS_PAGE]
            ]
        },
    }  # fmt: skip
    return JSONResponse({"data": {"me": body}})


def create_bench_app() -> Starlette:
    """The API plus the baseline endpoint; uvicorn's factory in the benchmark's server."""
    settings = Settings()
    configure_logging(level="WARNING", json=True)
    app = create_app(settings)
    app.add_route(BASELINE_PATH, baseline_wallet, methods=["GET"])
    return app


# --- Data ---------------------------------------------------------------------------------


async def load_bench_data(engine: AsyncEngine, *, families: int, seed: int) -> list[str]:
    """Synthetic families, and ledger spending on them; returns the heads' IINs."""
    async with engine.begin() as connection:
        await load_synthetic_registry(
            connection, families=families, seed=seed, as_of=datetime.now(UTC).date()
        )
    factory = create_session_factory(engine)
    rng = random.Random(seed)  # noqa: S311 - amounts of test data, not secrets
    async with factory() as session, session.begin():
        for code, kind, purpose in [
            ("programme:ASP", "budget_programme", None),
            ("programme:SCHOOL_MEALS", "budget_programme", "school_meals"),
            ("payout:bank", "bank_payout", None),
            ("merchant:5c0001a0-0000-4000-8000-0000000bench", "merchant", "school_meals"),
        ]:
            await ledger.open_account(session=session, code=code, kind=kind, purpose=purpose)
        rows = (
            await session.execute(
                select(
                    Person.id, Person.family_id, Person.iin, Person.role, Person.school_grade
                ).order_by(Person.family_id, Person.id)
            )
        ).all()
        firsts: dict[int, Any] = {}
        pupils: list[Any] = []  # rows of the statement above
        for row in rows:
            firsts.setdefault(row.family_id, row)
            if row.school_grade is not None and len(pupils) < families // 4:
                pupils.append(row)
        for n, person in enumerate(firsts.values()):
            await ledger.transfer(
                session=session, transfer_id=f"bench-asp-{n}", debit="programme:ASP",
                credit="payout:bank", amount=rng.randrange(2_000_000, 9_000_000),
                reason="BENEFIT_PAYMENT", family_id=person.family_id, person_id=person.id,
            )  # fmt: skip
        for n, pupil in enumerate(pupils):
            code = f"person:{pupil.id}:school_meals"
            await ledger.open_account(
                session=session, code=code, kind="purpose_wallet", purpose="school_meals",
                family_id=pupil.family_id, person_id=pupil.id,
            )  # fmt: skip
            await ledger.transfer(
                session=session, transfer_id=f"bench-fund-{n}", debit="programme:SCHOOL_MEALS",
                credit=code, amount=1_000_000, reason="VOUCHER_FUNDING",
                family_id=pupil.family_id, person_id=pupil.id,
            )  # fmt: skip
            for meal in range(2):
                await ledger.transfer(
                    session=session, transfer_id=f"bench-meal-{n}-{meal}", debit=code,
                    credit="merchant:5c0001a0-0000-4000-8000-0000000bench", amount=98_000,
                    reason="MEAL_SERVED", family_id=pupil.family_id, person_id=pupil.id,
                )  # fmt: skip
    heads = [row.iin for row in firsts.values()]
    return heads


# --- Measuring ----------------------------------------------------------------------------


async def statements_per_request(settings: Settings, engine: AsyncEngine, token: str) -> dict:
    """SQL statements of one GraphQL and one baseline request, counted on the engine."""
    app = create_app(settings, engine=engine)
    app.add_route(BASELINE_PATH, baseline_wallet, methods=["GET"])
    counts = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name, send in _requests(client, token).items():
            seen: list[str] = []

            def count(conn, cursor, statement, *args, _seen=seen):
                _seen.append(statement)

            event.listen(engine.sync_engine, "before_cursor_execute", count)
            try:
                response = await send()
            finally:
                event.remove(engine.sync_engine, "before_cursor_execute", count)
            response.raise_for_status()
            if "errors" in response.json():
                raise RuntimeError(f"{name}: {response.json()['errors']}")
            counts[name] = len(seen)
    return counts


def _requests(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}", "accept-language": "ru"}
    year = datetime.now(UTC).year
    body = {"query": WALLET_QUERY, "variables": {"year": year}}
    return {
        "graphql": lambda: client.post("/graphql", json=body, headers=headers),
        "baseline": lambda: client.get(BASELINE_PATH, params={"year": year}, headers=headers),
    }


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def plus(self, other: LoadResult) -> LoadResult:
        """Two measured runs as one."""
        return LoadResult(
            self.requests + other.requests,
            self.seconds + other.seconds,
            self.latencies_ms + other.latencies_ms,
        )

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(
    *, base_url: str, kind: str, tokens: list[str], concurrency: int, seconds: float
) -> LoadResult:
    """Send requests of one kind from `concurrency` workers for `seconds`; count and time them."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            n = offset
            while time.perf_counter() < deadline:
                send = _requests(client, tokens[n % len(tokens)])[kind]
                n += concurrency
                started = time.perf_counter()
                response = await send()
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200 or b'"errors"' in response.content[:2000]:
                    raise RuntimeError(f"{kind}: {response.status_code} {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), elapsed, latencies)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    """uvicorn with the bench app in a child process, one worker, on a loopback port."""
    # A fixed argument list (no shell): this interpreter running uvicorn on our factory.
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable, "-m", "uvicorn", "bench.wallet:create_bench_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--no-access-log", "--log-level", "warning",
        ],
        env=os.environ.copy(),
    )  # fmt: skip


async def wait_until_up(base_url: str, within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(base_url=base_url) as client:
        while True:
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            await asyncio.sleep(0.2)


def summary(
    *, graphql: LoadResult, baseline: LoadResult, statements: dict, families: int, persons: int,
    concurrency: int, database: str,
) -> dict[str, Any]:  # fmt: skip
    """The JSON line the benchmark ends with."""
    return {
        "benchmark": "wallet",
        "database": database,
        "families": families,
        "persons": persons,
        "concurrency": concurrency,
        "graphql_requests": graphql.requests,
        "baseline_requests": baseline.requests,
        "graphql_rps": round(graphql.rps, 1),
        "baseline_rps": round(baseline.rps, 1),
        "ratio": round(graphql.rps / baseline.rps, 3),
        "p50_ms": round(statistics.median(graphql.latencies_ms), 2),
        "p99_ms": round(graphql.percentile(0.99), 2),
        "baseline_p99_ms": round(baseline.percentile(0.99), 2),
        "sql_statements_per_request": statements["graphql"],
        "baseline_sql_statements_per_request": statements["baseline"],
    }


async def count_persons(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(Person)))


def dev_issuer(settings: Settings) -> DevIssuer:
    """Tokens the server accepts: the dev issuer's key at DEV_JWT_KEY_PATH (dev only)."""
    return DevIssuer(
        key_path=settings.dev_jwt_key_path,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        ttl_seconds=3600,
    )
