"""The offer job writes what it wrote before it was made faster (issue 18).

A small synthetic registry is evaluated and the batch job (`issue_pending_offers`) makes its
offers, their SMS and the notices. The rows it writes are reduced to a digest with the
database's ids made relative (sequences differ between databases and runs) and the random
reply codes taken out of the texts; the digest was captured from the code before the offer
job's fast paths (commit ac8c9e3; captured again, on SQLite and PostgreSQL alike, from main
just before they were merged, f628749, whose SMS write money in the one form the server and
the client share), so any change in a text, a month, an amount, a key or a count fails here.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bench.offers import OfferJobRun
from familymap.batch import run_batch
from familymap.i18n import money, money_by_babel
from familymap.registry_load import load_synthetic_registry
from familymap.tables import EntitlementChange, Family, Person
from tests.clock import PINNED_NOW, PINNED_TODAY
from tests.wallet.sms_codes import mask_reply_code
from wallet import reply_codes
from wallet.offer_tables import Notification, Offer, OfferTransition, WalletCursor
from wallet.offers import IssueSummary, _fewer_collections, issue_pending_offers, offer_key
from wallet.outbox_tables import OutboxMessage

FAMILIES = 400
SEED = 18
# Captured from the offer job before its fast paths (see the module's docstring), then once
# more when the medicines offer's SMS began to say that its consent stands month after month
# (sms.offer_standing; with the old text the job's rows still gave the old digest,
# ca1b0a90279773f8e2d1882c68d0fb93b29cb47818aa5b0fffa96088375f3b6c).
CAPTURED_BEFORE_FAST_PATHS = "61fc582a12b308b819dcbb015d06c40fae1f7c574d7fe7797989bc63b69905e4"


async def _registry(connection) -> None:
    await load_synthetic_registry(connection, families=FAMILIES, seed=SEED, as_of=PINNED_TODAY)
    await run_batch(connection, on=PINNED_TODAY)


async def _written(session) -> tuple[dict, str]:
    """What the job wrote, ids relative to the registry's first, codes masked; its digest."""
    first_family = await session.scalar(select(func.min(Family.id)))
    first_person = await session.scalar(select(func.min(Person.id)))
    first_change = await session.scalar(select(func.min(EntitlementChange.id)))

    def person(value):
        return None if value is None else value - first_person

    messages = {m.id: m for m in await session.scalars(select(OutboxMessage))}
    offers = (await session.scalars(select(Offer).order_by(Offer.id))).all()
    notices = (await session.scalars(select(Notification).order_by(Notification.id))).all()
    by_key = {m.message_key: m for m in messages.values()}
    transitions = Counter(
        (row.offer_id, row.from_state, row.to_state, row.channel)
        for row in await session.scalars(select(OfferTransition))
    )
    codes = Counter((o.phone, o.reply_code) for o in offers if o.reply_code is not None)

    def sms(offer):
        if offer.sms_message_id is None:
            return None
        message = messages[offer.sms_message_id]
        return (
            message.message_key == f"offer:{offer.offer_key}:sms",
            message.channel,
            message.recipient,
            mask_reply_code(message.body, offer.reply_code),
            message.status,
            message.attempts,
        )

    written = {
        # In the order they were made (ids ascending), as the rows the job wrote.
        "offers": [
            (
                offer_key(
                    o.programme,
                    o.family_id - first_family,
                    person(o.beneficiary_person_id),
                    o.period_start,
                ),
                o.offer_key
                == offer_key(o.programme, o.family_id, o.beneficiary_person_id, o.period_start),
                person(o.recipient_person_id),
                o.kind,
                o.region,
                o.amount_tiyn,
                o.period_start,
                o.period_end,
                json.dumps(o.monthly_amounts, sort_keys=True),
                o.state,
                o.phone,
                o.reply_code is not None and len(o.reply_code) == 4 and o.reply_code.isdigit(),
                o.language,
                o.source_change_id - first_change,
                o.expires_at - o.created_at,
                sms(o),
                transitions[(o.id, None, "offered", "system")],
            )
            for o in offers
        ],
        "notices": [
            (
                n.fact_key.split(":")[0],
                person(n.person_id),
                n.about_date,
                n.family_id - first_family,
                n.language,
                n.body,
                n.sms_queued,
                None
                if (m := by_key.get(f"notice:{n.id}")) is None
                else (m.channel, m.recipient, m.body, m.status),
            )
            for n in notices
        ],
        "messages": len(messages),
        "transitions": sum(transitions.values()),
        # No phone was given one code twice.
        "codes_unique": all(n == 1 for n in codes.values()),
    }
    return written, hashlib.sha256(repr(written).encode()).hexdigest()


def _counts(summary: IssueSummary) -> tuple[int, ...]:
    return (
        summary.changes,
        summary.offers,
        summary.notifications,
        summary.already,
        summary.no_recipient,
    )


async def test_the_offer_job_writes_what_the_code_before_its_fast_paths_wrote(
    connection, session, session_factory
):
    # Given a registry of 400 families evaluated, no offers made yet
    await _registry(connection)
    # When the batch job makes their offers in chunks (COPY on PostgreSQL)
    summary = await issue_pending_offers(
        session_factory=session_factory, now=PINNED_NOW, chunk_size=700
    )
    written, digest = await _written(session)
    # Then it made the offers, SMS and notices the code before made, row for row
    assert _counts(summary) == (661, 627, 34, 0, 0)
    assert len(written["offers"]) == 627 and len(written["notices"]) == 34
    assert written["codes_unique"]
    # (the registry has backpay months, priced as of their own last day, and one-offs)
    assert any('"as_of": "2026-10-31"' in offer[8] for offer in written["offers"])
    assert any(offer[6] == offer[7] for offer in written["offers"])
    assert digest == CAPTURED_BEFORE_FAST_PATHS


async def test_concurrent_jobs_and_a_rerun_make_each_offer_once(
    connection, session, session_factory
):
    # Given the same registry evaluated
    await _registry(connection)
    # When two jobs run at the same time, and a third from the start after they finish
    first, second = await asyncio.gather(
        issue_pending_offers(session_factory=session_factory, now=PINNED_NOW, chunk_size=300),
        issue_pending_offers(session_factory=session_factory, now=PINNED_NOW, chunk_size=500),
    )
    async with session_factory() as cursor_session, cursor_session.begin():
        cursor = await cursor_session.get(WalletCursor, "offers")
        cursor.position = 0
    again = await issue_pending_offers(
        session_factory=session_factory, now=PINNED_NOW + timedelta(hours=1), chunk_size=700
    )
    written, digest = await _written(session)
    # Then between them the jobs made every offer and notice once, the rows the job makes
    # alone; the rerun found them all made
    assert first.offers + second.offers == 627
    assert first.notifications + second.notifications == 34
    assert (again.offers, again.notifications, again.already) == (0, 0, 627 + 34)
    assert written["codes_unique"]
    assert digest == CAPTURED_BEFORE_FAST_PATHS


def test_codes_drawn_in_bulk_throw_away_the_uneven_top_of_each_two_bytes(monkeypatch):
    # Given the system's random source giving 65,535 (in the uneven top: 65,536 is not a
    # multiple of 9,000), then 63,005 (as well), then 5, then 9,004
    given = bytes([0xFF, 0xFF, 0xF6, 0x1D, 0x00, 0x05, 0x23, 0x2C])
    monkeypatch.setattr(reply_codes.secrets, "token_bytes", lambda n: given + bytes(n - 8))
    draw = reply_codes.ReplyCodeDraw()
    # When codes are drawn, then the top values are skipped and the others taken modulo 9,000
    assert reply_codes.new_reply_code(taken=(), draw=draw) == "1005"
    assert reply_codes.new_reply_code(taken=(), draw=draw) == "1004"
    # and the zeros that follow give 1000
    assert reply_codes.new_reply_code(taken={"1004", "1005"}, draw=draw) == "1000"


def test_codes_drawn_in_bulk_find_the_one_code_left():
    taken = {str(code) for code in range(1000, 10_000)} - {"5930"}
    assert reply_codes.new_reply_code(taken=taken, draw=reply_codes.ReplyCodeDraw()) == "5930"


@pytest.mark.parametrize("language", ["kk", "ru", "en"])
def test_tenge_are_written_as_babel_writes_them(language):
    # Given amounts small and large, round and not, and a random spread of campaign amounts
    rng = random.Random(18)
    amounts = [0, 1, 5, 10, 99, 100, 101, 999, 1000, 99_999, 100_000, 123_456, 1_000_000]
    amounts += [10**k - 1 for k in range(1, 16)] + [10**k for k in range(1, 16)]
    amounts += [rng.randrange(0, 10 ** rng.randrange(1, 13)) for _ in range(5000)]
    # When the formatter writes them from the locale's form read once from Babel,
    # then each is the rule computed by Babel for that amount, to the character
    for tiyn in [*amounts, -1, -100, -123_456]:
        assert money(tiyn, language) == money_by_babel(tiyn, language), tiyn


def test_the_collector_is_deferred_while_jobs_run_and_put_back_after_the_last():
    before = gc.get_threshold()
    # When two jobs run at once in one process
    with _fewer_collections():
        with _fewer_collections():
            # Then the collector runs rarely and skips what existed before
            assert gc.get_threshold()[0] >= 100_000 and gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] >= 100_000
    # and after the last one it is as it was
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_the_benchmark_reports_the_cpu_an_offer_costs():
    run = OfferJobRun(IssueSummary(offers=2000), 1.5, 0.156, 0.138)
    assert run.cpu_us_per_offer() == {"job": 78.0, "database": 69.0}
    assert OfferJobRun(IssueSummary(offers=10), 1.0, 0.001, None).cpu_us_per_offer() == {
        "job": 100.0,
        "database": None,
    }
