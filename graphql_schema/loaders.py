"""DataLoaders: one per request and relation, each batch in its own short session.

`Context.loaders` is a `Loaders` mapping made in `get_context`: a loader is created the first
time a resolver asks for it by name, so a request that never touches the wallet pays nothing.
Each batch function opens its own session from the request's factory (sibling resolvers run
concurrently, and one AsyncSession must not be shared by them), reads every key of the batch
in ONE statement, and returns results lined up with the keys. That is what keeps the wallet
query at a constant number of statements whatever the family's size.

To add a relation: write `async def _things_by_family(loaders, family_ids)` that opens
`loaders.session_factory()`, reads all keys in one statement and returns one list per key;
register it in `BATCHES`; resolvers then call `info.context.loaders["things_by_family"]
.load(family_id)` (as offers and notifications do).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader

from familymap.engine.results import FamilyEvaluation
from familymap.welfare import WelfareAssessment
from vouchers.listing import family_vouchers
from wallet import spending as spending_domain
from wallet import view
from wallet.households import Household, read_households
from wallet.notices import notifications_of_families
from wallet.offers import offers_of_families

SessionFactory = async_sessionmaker[AsyncSession]
T = TypeVar("T")
Batch = Callable[[Any, Sequence[Any]], Awaitable[list[Any]]]


async def _household_by_iin(loaders: Loaders, iins: Sequence[str]) -> list[Household | None]:
    """The families of the callers with these IINs, with all members, in ONE statement."""
    async with loaders.session_factory() as session:
        found = await read_households(session=session, iins=iins)
    return [found.get(iin) for iin in iins]


async def _of_households(
    loaders: Loaders, keys: Sequence[tuple[str, date]], compute: Callable[..., T]
) -> list[T | None]:
    """`compute(family=, members=, on=)` for each caller's household (no statement of its
    own: it reuses the household loader); None for a caller not in the registry."""
    results: list[T | None] = []
    for iin, on in keys:
        household = await loaders["household_by_iin"].load(iin)
        results.append(
            None
            if household is None
            else compute(family=household.family, members=household.members, on=on)
        )
    return results


async def _evaluation_by_iin(
    loaders: Loaders, keys: Sequence[tuple[str, date]]
) -> list[FamilyEvaluation | None]:
    """The live evaluation of each caller's family."""
    return await _of_households(loaders, keys, view.evaluate)


async def _welfare_by_iin(
    loaders: Loaders, keys: Sequence[tuple[str, date]]
) -> list[WelfareAssessment | None]:
    """The welfare of each caller's family, alone: the wallet screen shows it without the
    entitlements, and the rules' evaluation would cost several times the assessment."""
    return await _of_households(loaders, keys, view.welfare)


async def _spending_by_family(
    loaders: Loaders, keys: Sequence[tuple[int, int, int | None]]
) -> list[spending_domain.Spending]:
    """Spending per (family id, year, month): one statement per distinct period asked."""
    by_period: dict[tuple[int, int | None], list[int]] = defaultdict(list)
    for family_id, year, month in keys:
        by_period[(year, month)].append(family_id)
    lines: dict[tuple[int, int, int | None], list[spending_domain.SpendingLine]] = defaultdict(list)
    async with loaders.session_factory() as session:
        for (year, month), family_ids in by_period.items():
            start, end = spending_domain.period_bounds(year=year, month=month)
            for line in await spending_domain.spending_lines(
                session=session, family_ids=family_ids, start=start, end=end
            ):
                lines[(line.family_id, year, month)].append(line)
    return [
        spending_domain.summarise(family_id=f, year=y, month=m, lines=lines.get((f, y, m), ()))
        for f, y, m in keys
    ]


async def _payments_by_family(
    loaders: Loaders, family_ids: Sequence[int]
) -> list[list[spending_domain.Payment]]:
    async with loaders.session_factory() as session:
        payments = await spending_domain.family_payments(session=session, family_ids=family_ids)
    return _grouped(payments, family_ids)


async def _offers_by_family(loaders: Loaders, family_ids: Sequence[int]) -> list[list[Any]]:
    """Every offer made to each family, newest first, in ONE statement."""
    async with loaders.session_factory() as session:
        rows = await offers_of_families(session=session, family_ids=family_ids)
    return _grouped(rows, family_ids)


async def _notifications_by_family(loaders: Loaders, family_ids: Sequence[int]) -> list[list[Any]]:
    """Every notice sent to each family's members, newest first, in ONE statement."""
    async with loaders.session_factory() as session:
        rows = await notifications_of_families(session=session, family_ids=family_ids)
    return _grouped(rows, family_ids)


async def _vouchers_by_family(loaders: Loaders, family_ids: Sequence[int]) -> list[list[Any]]:
    """Every voucher of each family's members, with their wallets' balances, in ONE statement."""
    async with loaders.session_factory() as session:
        rows = await family_vouchers(session=session, family_ids=family_ids)
    return _grouped(rows, family_ids)


def _grouped(rows: Sequence[Any], family_ids: Sequence[int]) -> list[list[Any]]:
    """Rows carrying a family_id, as one list per key, in the keys' order."""
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.family_id].append(row)
    return [grouped.get(family_id, []) for family_id in family_ids]


BATCHES: dict[str, Batch] = {
    "offers_by_family": _offers_by_family,
    "notifications_by_family": _notifications_by_family,
    "vouchers_by_family": _vouchers_by_family,
    "household_by_iin": _household_by_iin,
    "evaluation_by_iin": _evaluation_by_iin,
    "welfare_by_iin": _welfare_by_iin,
    "spending_by_family": _spending_by_family,
    "payments_by_family": _payments_by_family,
}


class Loaders(dict[str, DataLoader]):
    """The request's DataLoaders by name, each made on first use."""

    def __init__(self, session_factory: SessionFactory) -> None:
        super().__init__()
        self.session_factory = session_factory

    def __missing__(self, name: str) -> DataLoader:
        loader: DataLoader = DataLoader(load_fn=partial(BATCHES[name], self))
        self[name] = loader
        return loader
