"""Reply codes: the short number each offer's SMS asks the reply to carry ("1 4821").

A code is unique among all the offers ever sent to its phone, open or not: a reply with a
code names exactly one offer, and a late reply to an offer answered or expired can never land
on a newer offer that happened to draw the same code. A phone gets a few offers a year and
there are 9,000 codes, so this costs nothing. Codes are drawn at random (not counted up), so
that a mistyped or guessed code is unlikely to name another offer (docs/consent.md).
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wallet.bulk import among
from wallet.offer_tables import Offer

REPLY_CODE_DIGITS = 4
_LOWEST = 10 ** (REPLY_CODE_DIGITS - 1)  # no leading zero, which some phones' users drop
_HOW_MANY = 9 * _LOWEST


def new_reply_code(*, taken: Collection[str], draw: ReplyCodeDraw | None = None) -> str:
    """A random code of REPLY_CODE_DIGITS ASCII digits that is not among `taken`; `draw`
    supplies the randomness in bulk when many codes are drawn at once."""
    below = secrets.randbelow if draw is None else draw.below
    while True:
        code = str(_LOWEST + below(_HOW_MANY))
        if code not in taken:
            return code


class ReplyCodeDraw:
    """Random numbers for many codes from one read of the system's random source.

    `secrets.randbelow` reads the operating system's source once a code: after a national run
    that is a system call per offer, a twentieth of the offer job's time. This reads 4 KB at a
    time (the same source) and draws each number uniformly by rejection: two bytes give a
    number below 65,536, and those at or above the largest multiple of `bound` are thrown
    away, so every value below `bound` is equally likely.
    """

    _CHUNK = 4096

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0

    def below(self, bound: int) -> int:
        limit = (1 << 16) - (1 << 16) % bound
        while True:
            if self._at + 2 > len(self._buffer):
                self._buffer, self._at = secrets.token_bytes(self._CHUNK), 0
            value = int.from_bytes(self._buffer[self._at : self._at + 2], "big")
            self._at += 2
            if value < limit:
                return value % bound


async def codes_by_phone(*, session: AsyncSession, phones: Iterable[str]) -> dict[str, set[str]]:
    """The codes of every offer sent to each phone, in one statement."""
    wanted = sorted(set(phones))
    taken: dict[str, set[str]] = {phone: set() for phone in wanted}
    if not wanted:
        return taken
    rows = await session.execute(
        select(Offer.phone, Offer.reply_code).where(
            among(await session.connection(), Offer.phone, wanted),
            Offer.reply_code.is_not(None),
        )
    )
    for phone, code in rows:
        assert phone is not None and code is not None  # both selected by value above
        taken[phone].add(code)
    return taken


def give_codes(*, offers: Sequence[Offer]) -> list[Offer]:
    """Make every open offer of one phone (given all of that phone's offers) nameable by a
    code of its own; the offers whose code changed.

    An offer made before codes existed gets one. Two offers made at the same moment by two
    transactions may have drawn the same code: then a reply with it could mean either, so
    each open one of them gets a new code (told to the citizen in the answer that lists them).
    """
    counts = Counter(offer.reply_code for offer in offers if offer.reply_code)
    taken = set(counts)
    redrawn = []
    for offer in sorted(offers, key=lambda o: o.id):
        if offer.state == "offered" and (offer.reply_code is None or counts[offer.reply_code] > 1):
            offer.reply_code = new_reply_code(taken=taken)
            taken.add(offer.reply_code)
            redrawn.append(offer)
    return redrawn
