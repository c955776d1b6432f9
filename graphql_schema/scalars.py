"""Custom scalars, and the checks every input value passes. An IIN is validated wherever it
enters the API; so are ids, text and dates.

Scalars are declared the way strawberry recommends: a NewType for Python's type checker and
a definition registered in the schema's `scalar_map` (see `SCALAR_MAP`). `Date` is ours too:
bounded, so no date arithmetic overflows (9999-12-31 + 1 day), and ASCII digits only.

GraphQL's own `ID` and `String` cannot be redefined (graphql-core reserves their names), so
their values are checked by `check_id` and `check_text` from one validation rule (literals)
and one schema extension (variables): graphql_schema/limits.py. Python's `int()`,
`str.isdigit()` and regex `\\d` take any Unicode digit ("１２" is 12); nothing here does.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date
from typing import NewType

import strawberry

from familymap.iin import validate_iin
from graphql_schema.errors import InvalidValue

# Ids are database integers (bigint) or UUIDs or Relay global ids: never longer than this.
MAX_ID_LENGTH = 128
INT64_MAX = 2**63 - 1
# Dates the API takes: wide enough for any birth date or validity, narrow enough that adding
# a few years never leaves the calendar (date.max is 9999-12-31).
MIN_DATE = date(1900, 1, 1)
MAX_DATE = date(2999, 12, 31)
_ASCII_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ASCII_NUMBER = re.compile(r"[0-9]{1,19}")
_LIST_CURSOR_PREFIX = "arrayconnection:"


def record_number(text: str) -> int | None:
    """The record number an id spells in ASCII digits, if it fits a bigint; else None."""
    if not isinstance(text, str) or not _ASCII_NUMBER.fullmatch(text):
        return None
    number = int(text)
    return number if number <= INT64_MAX else None


def check_id(value: object) -> str:
    """An ID as text: printable ASCII without spaces; a number must fit a bigint."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidValue("error.id_type")
    text = str(value)
    if not 0 < len(text) <= MAX_ID_LENGTH or not text.isascii() or not text.isprintable():
        raise InvalidValue("error.id_length", length=MAX_ID_LENGTH)
    if " " in text:
        raise InvalidValue("error.id_spaces")
    if text.lstrip("+-").isdigit() and record_number(text) is None:
        raise InvalidValue("error.id_range", max=INT64_MAX)
    return text


def check_text(value: str) -> str:
    """Text any database can store: no NUL character, no lone surrogate (not UTF-8)."""
    if "\x00" in value:
        raise InvalidValue("error.text_nul")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidValue("error.text_unicode") from None
    return value


def is_list_cursor(value: str) -> bool:
    """Whether `value` is a cursor of a list connection: base64 of "arrayconnection:<n>"."""
    if not isinstance(value, str) or len(value) > 64 or not value.isascii():
        return False
    try:
        decoded = base64.b64decode(value.encode(), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return False
    prefix, _, number = decoded.partition(":")
    return prefix + ":" == _LIST_CURSOR_PREFIX and record_number(number) is not None


def parse_date(value: object) -> date:
    """A `Date` input: YYYY-MM-DD in ASCII digits, a real day within MIN_DATE..MAX_DATE."""
    if not isinstance(value, str) or not _ASCII_DAY.fullmatch(value):
        raise InvalidValue("error.date_format")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise InvalidValue("error.not_a_date") from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise InvalidValue(
            "error.date_range", first=MIN_DATE.isoformat(), last=MAX_DATE.isoformat()
        )
    return day


IIN = NewType("IIN", str)
# Money in tiyn. GraphQL's Int is 32 bits (21 million tenge), too small for a family's yearly
# spending or a programme's budget; JSON numbers are exact up to 2**53 - 1 in every client
# (JavaScript included), which is 90 trillion tenge: a number, not a string, is enough.
Tiyn = NewType("Tiyn", int)
MAX_SAFE_TIYN = 2**53 - 1


def _tiyn(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_SAFE_TIYN:
        raise ValueError("an amount in tiyn must be a whole number within +-(2^53 - 1)")
    return value


SCALAR_MAP = {
    date: strawberry.scalar(
        name="Date",
        # strawberry's own description: the committed schema (the clients' contract) is the
        # same; the bounds are in docs/security.md and in each refusal's message.
        description="Date (isoformat)",
        serialize=date.isoformat,
        parse_value=parse_date,
    ),
    IIN: strawberry.scalar(
        name="IIN",
        description=(
            "Individual identification number: 12 digits, the last a check digit. "
            "A value that fails the check is refused with code INVALID_IIN."
        ),
        serialize=str,
        parse_value=validate_iin,
    ),
    Tiyn: strawberry.scalar(
        name="Tiyn",
        description=(
            "An amount of money in tiyn (1/100 tenge): a whole JSON number, exact up to "
            "2^53 - 1 (wider than Int's 32 bits)."
        ),
        serialize=_tiyn,
        parse_value=_tiyn,
    ),
}
