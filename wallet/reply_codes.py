"""Reply codes: the short number each offer's SMS asks the reply to carry ("1 4821").

A code is unique among the open offers of the phone its SMS went to, so a reply with a code
names exactly one offer. Codes are drawn at random (not counted up), so that a reply with a
mistyped or guessed code is unlikely to land on another open offer (docs/consent.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wallet.offer_tables import Offer

REPLY_CODE_DIGITS = 4
_LOWEST = 10 ** (REPLY_CODE_DIGITS - 1)  # no leading zero, which some phones' users drop
_HOW_MANY = 9 * _LOWEST


def new_reply_code(*, taken: Collection[str]) -> str:
    """A random code of REPLY_CODE_DIGITS ASCII digits that is not among `taken`."""
    while True:
        code = str(_LOWEST + secrets.randbelow(_HOW_MANY))
        if code not in taken:
            return code


async def open_codes_by_phone(
    *, session: AsyncSession, phones: Iterable[str]
) -> dict[str, set[str]]:
    """The codes of each phone's open offers, in one statement."""
    wanted = sorted(set(phones))
    taken: dict[str, set[str]] = {phone: set() for phone in wanted}
    if not wanted:
        return taken
    rows = await session.execute(
        select(Offer.phone, Offer.reply_code).where(
            Offer.phone.in_(wanted), Offer.state == "offered", Offer.reply_code.is_not(None)
        )
    )
    for phone, code in rows:
        taken[phone].add(code)
    return taken


async def give_codes(*, session: AsyncSession, offers: Sequence[Offer]) -> None:
    """Make the codes of one phone's open offers usable: a code for each offer without one
    (made before codes existed) and a new one for a code two offers share (after a race)."""
    seen: set[str] = set()
    redraw: list[Offer] = []
    for offer in sorted(offers, key=lambda o: o.id):
        if offer.reply_code is None or offer.reply_code in seen:
            redraw.append(offer)
        else:
            seen.add(offer.reply_code)
    if not redraw:
        return
    phones = {offer.phone for offer in redraw if offer.phone}
    taken = await open_codes_by_phone(session=session, phones=phones)
    for offer in redraw:
        if not offer.phone:
            continue
        offer.reply_code = new_reply_code(taken=taken[offer.phone] | seen)
        taken[offer.phone].add(offer.reply_code)
