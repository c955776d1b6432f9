"""The take-up funnel on a small constructed history (tests/wallet/funnel_history.py): each
figure against the table computed by hand, per programme, region and month, and in total."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.wallet.funnel_history import AS_OF, EXPECTED, build_history
from wallet.funnel import ASTANA, FunnelRow, offer_funnel

YEAR_2026 = {
    "since": datetime(2026, 1, 1, tzinfo=ASTANA),
    "until": datetime(2027, 1, 1, tzinfo=ASTANA),
}


def figures(row: FunnelRow) -> dict:
    return {name: getattr(row, name) for name in EXPECTED[next(iter(EXPECTED))]}


@pytest.fixture
async def history(session):
    await build_history(session)


async def test_each_figure_per_programme_region_and_month_is_the_hand_computed_one(
    session, history
):
    # Given the constructed history (fixture)
    # When the funnel of 2026 (in Astana) is read by programme, region and month
    rows = await offer_funnel(
        session=session, now=AS_OF, group_by=("programme", "region", "month"), **YEAR_2026
    )
    # Then each row is the hand-computed one, and offers outside 2026 count nowhere
    assert {(r.programme, r.region, r.month): figures(r) for r in rows} == EXPECTED


async def test_the_rates_and_the_drop_at_each_step(session, history):
    # Given the constructed history
    # When its March births are read
    (march,) = await offer_funnel(
        session=session,
        now=AS_OF,
        since=datetime(2026, 3, 1, tzinfo=ASTANA),
        until=datetime(2026, 4, 1, tzinfo=ASTANA),
        programme="BIRTH_BENEFIT",
    )
    # Then take-up is accepted / sent, the received rate is received / sent
    assert march.take_up_rate == pytest.approx(6 / 11)
    assert march.received_rate == pytest.approx(2 / 11)
    # and each step says how many it lost
    assert march.steps() == [
        ("sent", 11, 0),
        ("delivered", 8, 3),
        ("answered", 8, 0),
        ("accepted", 6, 2),
        ("received", 2, 4),
    ]
    assert march.declined_without_reason == 1


async def test_grouped_by_nothing_is_the_national_total(session, history):
    # Given the constructed history
    # When 2026 is read without grouping
    (total,) = await offer_funnel(session=session, now=AS_OF, group_by=(), **YEAR_2026)
    # Then it is the sum of the rows, the median over every payment confirmed
    assert (total.programme, total.region, total.month) == (None, None, None)
    assert (total.sent, total.delivered, total.answered, total.accepted) == (14, 10, 10, 7)
    assert (total.paid, total.vouchers_issued, total.received) == (2, 1, 3)
    assert (total.declined, total.expired, total.open, total.returned) == (3, 3, 1, 1)
    assert total.declined_for["DO_NOT_TRUST_SMS"] == 1
    assert total.median_seconds_to_payment == 72 * 3600.0


async def test_per_region_and_filters(session, history):
    # Given the constructed history
    # When 2026 is read per region, and for one region only
    rows = await offer_funnel(session=session, now=AS_OF, group_by=("region",), **YEAR_2026)
    only = await offer_funnel(session=session, now=AS_OF, region="almaty", **YEAR_2026)
    # Then astana has the twelve births and almaty the two meals offers
    assert [(r.region, r.sent, r.received) for r in rows] == [("almaty", 2, 1), ("astana", 12, 2)]
    assert [(r.programme, r.region, r.sent) for r in only] == [("SCHOOL_MEALS", "almaty", 2)]


async def test_an_unknown_dimension_is_refused(session):
    # When the funnel is asked to group by something it does not know
    # Then it refuses
    with pytest.raises(ValueError, match="cannot group by family"):
        await offer_funnel(
            session=session,
            now=AS_OF,
            since=datetime(2026, 1, 1, tzinfo=UTC),
            until=datetime(2026, 2, 1, tzinfo=UTC),
            group_by=("family",),
        )
