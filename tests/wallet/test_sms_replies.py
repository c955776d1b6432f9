"""Replies to 1414 answer the offer their SMS asked about, and no other.

Each offer's SMS carries a reply code; a reply with it answers that offer. A reply without a
code answers only when the phone was asked one question lately; otherwise it changes
nothing and the answer lists the codes. Every interleaving of two offers (the birth benefit
and childcare, as after a birth) and their replies is played, each reply delivered twice by
the gateway, and no reply may change an offer it was not about.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from familymap.iin import complete_iin
from familymap.orm import utcnow
from familymap.tables import EntitlementChange
from tests.wallet.offer_builders import evaluate, newborn_household
from wallet.inbound import BARE_REPLY_MEMORY, InboundReply, handle_reply, read_reply
from wallet.offer_tables import InboundSms, Offer
from wallet.offers import offer_changes
from wallet.outbox_tables import OutboxMessage
from wallet.reply_codes import new_reply_code

PROGRAMMES = {"A": "BIRTH_BENEFIT", "B": "CHILDCARE_TO_1_5"}
EVENTS = ("offer A", "offer B", "reply A", "reply B", "bare reply")
ACCEPTED = {"accepted", "assigned", "needs_bank_account", "withdrawn", "paid"}


def interleavings():
    """Every order of the events in which a coded reply comes after its offer's SMS (the
    code is only known from it); the bare reply may come anywhere."""
    for order in itertools.permutations(EVENTS):
        if order.index("reply A") > order.index("offer A") and order.index("reply B") > order.index(
            "offer B"
        ):
            yield order


def iins(n: int) -> tuple[str, str, str]:
    """Three valid IINs (father, mother, child) of the n-th household."""
    made = [complete_iin(f"{prefix}{n:04d}") for prefix in ("8804123", "9006054", "2509015")]
    assert all(made), n
    return tuple(made)


def household_numbers():
    """Numbers whose three IINs all have a check digit."""
    for n in itertools.count(1):
        first = [f"{prefix}{n:04d}" for prefix in ("8804123", "9006054", "2509015")]
        if all(complete_iin(eleven) for eleven in first):
            yield n


def normalised(state: str) -> str:
    return "accepted" if state in ACCEPTED else state


async def states(session, family_id: int) -> dict[str, str]:
    rows = await session.execute(
        select(Offer.programme, Offer.state).where(Offer.family_id == family_id)
    )
    label = {programme: label for label, programme in PROGRAMMES.items()}
    return {label[programme]: normalised(state) for programme, state in rows}


async def play(session, n: int, order: tuple[str, ...], words: dict[str, str]) -> None:
    """Play one interleaving for a household of its own and check every reply's effect."""
    phone = f"+7701{n:07d}"
    household = await newborn_household(session, iins=iins(n), phones=(phone, None))
    run_id = await evaluate(session, household)
    changes = {
        change.programme: change
        for change in await session.scalars(
            select(EntitlementChange).where(
                EntitlementChange.run_id == run_id, EntitlementChange.change == "new"
            )
        )
    }
    now = utcnow()
    sent: list[str] = []  # the offers whose SMS the phone has received, in order
    codes: dict[str, str] = {}
    model: dict[str, str] = {}  # what each offer's state must be
    for step, event in enumerate(order):
        if event.startswith("offer"):
            label = event[-1]
            change = changes[PROGRAMMES[label]]
            await offer_changes(session=session, changes=[change], now=now)
            codes[label] = await session.scalar(
                select(Offer.reply_code).where(
                    Offer.family_id == household.family.id, Offer.programme == PROGRAMMES[label]
                )
            )
            sent.append(label)
            model[label] = "offered"
            continue
        # Given the reply a citizen sends: with the code of the offer it answers, or bare
        label = None if event == "bare reply" else event[-1]
        word = words[label or "bare"]
        text = word if label is None else f"{word} {codes[label]}"
        # A bare reply is about an offer only if that was the one SMS the phone had received
        about = {label} if label else (set(sent) if len(sent) == 1 else set())
        before = await states(session, household.family.id)
        # When the gateway delivers it, twice
        for _delivery in range(2):
            await handle_reply(
                session=session,
                reply=InboundReply(message_id=f"gw-{n}-{step}", sender=phone, text=text),
                now=now,
            )
        after = await states(session, household.family.id)
        # Then it changed no offer it was not about
        changed = {offer for offer in after if after[offer] != before[offer]}
        where = f"{order} {words}: {event} ({text!r})"
        assert changed <= about, f"{where} changed {changed}"
        # and answered the one it was about, if that one was still open
        for offer in about:
            if model[offer] == "offered":
                model[offer] = "accepted" if word == "1" else "declined"
        assert after == model, where
    # Each delivery was recorded once, whatever the gateway repeated
    replies = sum(1 for event in order if "reply" in event)
    recorded = await session.scalar(
        select(func.count())
        .select_from(InboundSms)
        .where(InboundSms.gateway_message_id.like(f"gw-{n}-%"))
    )
    assert recorded == replies


# Each reply accepts in some runs and declines in others; the two coded replies differ in
# some, so an answer landing on the wrong offer would also show in the states.
@pytest.mark.parametrize("words", [
    {"A": a, "B": b, "bare": bare} for a, b, bare in ("121", "212", "112", "221")
])  # fmt: skip
async def test_no_reply_ever_changes_an_offer_it_was_not_about(session, words):
    # Given every interleaving of two offers, a coded reply to each and a bare reply
    numbers = household_numbers()
    for order in interleavings():
        # When each is played, then each reply changes only the offer it was about
        await play(session, next(numbers), order, words)


def test_there_are_thirty_interleavings():
    assert len(list(interleavings())) == 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 4821", (True, "4821")),
        ("2 4821", (False, "4821")),
        ("4821 1", (True, "4821")),
        ("Да, 4821", (True, "4821")),
        ("иә 4821.", (True, "4821")),
        ("ЖОҚ 4821", (False, "4821")),
        ("14821", (True, "4821")),
        ("24821", (False, "4821")),
        ("1", (True, None)),
        ("нет", (False, None)),
        ("1 482", (None, None)),  # not a code: nothing is answered
        ("1 4821 5930", (None, None)),
        ("4821", (None, None)),
        ("1 ４８２１", (None, None)),  # a code is ASCII digits
        ("34821", (None, None)),
    ],
)
def test_a_reply_is_read_as_an_answer_and_the_code_it_names(text, expected):
    assert read_reply(text) == expected


def test_a_new_code_is_four_ascii_digits_not_taken():
    # Given every code but one taken
    taken = {str(code) for code in range(1000, 10000)} - {"5930"}
    # When a code is drawn, then it is the one left
    assert new_reply_code(taken=taken) == "5930"


@pytest.fixture
async def offered(session):
    """The newborn household with both its offers made (the birth benefit and childcare)."""
    household = await newborn_household(session)
    await offer_changes(
        session=session,
        changes=(
            await session.scalars(
                select(EntitlementChange).where(
                    EntitlementChange.run_id == await evaluate(session, household),
                    EntitlementChange.change == "new",
                )
            )
        ).all(),
        now=utcnow(),
    )
    offers = {
        offer.programme: offer
        for offer in await session.scalars(
            select(Offer).where(Offer.family_id == household.family.id)
        )
    }
    return household, offers


async def reply(session, household, message_id: str, text: str, now=None):
    outcome = await handle_reply(
        session=session,
        reply=InboundReply(message_id=message_id, sender=household.father.phone, text=text),
        now=now or utcnow(),
    )
    answer = await session.scalar(
        select(OutboxMessage.body).where(
            OutboxMessage.message_key == f"inbound:{message_id}:answer"
        )
    )
    return outcome, answer


async def open_count(session) -> int:
    return await session.scalar(
        select(func.count()).select_from(Offer).where(Offer.state == "offered")
    )


async def test_a_code_no_offer_has_changes_nothing_and_lists_the_codes(session, offered):
    # Given two open offers with their codes
    household, offers = offered
    codes = {offer.reply_code for offer in offers.values()}
    unused = next(str(c) for c in range(1000, 10000) if str(c) not in codes)
    before = await open_count(session)
    # When the father replies with a code none of them has
    outcome, answer = await reply(session, household, "gw-typo", f"1 {unused}")
    # Then nothing changes and the answer names each open offer's code
    assert (outcome.outcome, outcome.offer_id) == ("unknown_code", None)
    assert await open_count(session) == before
    assert unused in answer and all(f"{code} (" in answer for code in codes)


async def test_a_code_of_an_answered_offer_is_told_so_and_answers_no_other(session, offered):
    # Given the birth benefit declined by its code
    household, offers = offered
    birth = offers["BIRTH_BENEFIT"]
    first, _ = await reply(session, household, "gw-1", f"2 {birth.reply_code}")
    assert first.outcome == "declined"
    # When the same code comes again with "1" (a change of mind, or a late second SMS)
    outcome, answer = await reply(session, household, "gw-2", f"1 {birth.reply_code}")
    # Then the birth benefit stays declined, the other offers stay open, and he is told why
    assert outcome.outcome == "closed_offer"
    await session.refresh(birth)
    assert birth.state == "declined"
    assert await open_count(session) == len(offers) - 1
    assert birth.reply_code in answer and "ответили или истёк срок" in answer


async def test_a_late_bare_reply_after_a_deadline_does_not_land_on_a_newer_offer(session, offered):
    # Given the birth benefit's deadline passed unanswered and childcare is still open
    household, offers = offered
    birth, childcare = offers["BIRTH_BENEFIT"], offers["CHILDCARE_TO_1_5"]
    now = utcnow()
    await session.execute(
        update(Offer).where(Offer.id == birth.id).values(expires_at=now - timedelta(days=1))
    )
    await session.execute(
        update(Offer)
        .where(Offer.family_id == household.family.id, Offer.id != birth.id)
        .where(Offer.id != childcare.id)
        .values(state="declined")
    )
    # When a bare "1" arrives (it may be the late answer to the birth benefit)
    outcome, answer = await reply(session, household, "gw-late", "1", now=now)
    # Then childcare is not taken for it: the answer asks for the code
    assert outcome.outcome == "ambiguous"
    await session.refresh(childcare)
    assert childcare.state == "offered" and childcare.reply_code in answer


async def test_a_bare_reply_answers_the_one_question_asked_lately(session, offered):
    # Given one open offer whose SMS is the only one the phone got lately (the others were
    # answered long ago)
    household, offers = offered
    birth = offers["BIRTH_BENEFIT"]
    long_ago = utcnow() - BARE_REPLY_MEMORY - timedelta(days=1)
    await session.execute(
        update(Offer)
        .where(Offer.family_id == household.family.id, Offer.id != birth.id)
        .values(state="declined", expires_at=long_ago)
    )
    # When the father replies "Да" without a code
    outcome, _ = await reply(session, household, "gw-bare", "Да")
    # Then that offer is the one answered
    assert (outcome.outcome, outcome.offer_id) == ("assigned", birth.id)


async def test_offers_made_before_codes_get_codes_when_a_reply_needs_them(session, offered):
    # Given two open offers made before reply codes existed
    household, offers = offered
    await session.execute(
        update(Offer).where(Offer.family_id == household.family.id).values(reply_code=None)
    )
    for offer in offers.values():
        await session.refresh(offer)
    # When the father replies "1" without a code
    outcome, answer = await reply(session, household, "gw-bare", "1")
    # Then nothing is answered, each open offer now has a code, and the answer lists them
    assert outcome.outcome == "ambiguous"
    await session.flush()
    for offer in offers.values():
        await session.refresh(offer)
        assert offer.reply_code and f"{offer.reply_code} (" in answer
    # and a reply with one of them answers that offer
    birth = offers["BIRTH_BENEFIT"]
    coded, _ = await reply(session, household, "gw-coded", f"1 {birth.reply_code}")
    assert (coded.outcome, coded.offer_id) == ("assigned", birth.id)


async def test_two_offers_that_drew_the_same_code_are_given_new_ones(session, offered):
    # Given two open offers that drew the same code (made at once by two transactions)
    household, offers = offered
    await session.execute(
        update(Offer).where(Offer.family_id == household.family.id).values(reply_code="4821")
    )
    # When the father replies with that code
    outcome, answer = await reply(session, household, "gw-shared", "1 4821")
    # Then neither is answered, and each gets a code of its own, listed in the answer
    assert outcome.outcome == "unknown_code"
    assert await open_count(session) == len(offers)
    await session.flush()
    fresh = set()
    for offer in offers.values():
        await session.refresh(offer)
        fresh.add(offer.reply_code)
        assert offer.reply_code != "4821" and f"{offer.reply_code} (" in answer
    assert len(fresh) == len(offers)


async def test_the_clarifying_answer_is_in_the_citizens_language(session):
    # Given a Kazakh-speaking father with two open offers
    household = await newborn_household(session, language="kk")
    await offer_changes(
        session=session,
        changes=(
            await session.scalars(
                select(EntitlementChange).where(
                    EntitlementChange.run_id == await evaluate(session, household)
                )
            )
        ).all(),
        now=utcnow(),
    )
    # When he replies without a code
    outcome, answer = await reply(session, household, "gw-kk", "иә")
    # Then he is asked for the code in Kazakh
    assert outcome.outcome == "ambiguous" and "кодсыз жауап қабылданбады" in answer
