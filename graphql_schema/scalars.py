"""Custom scalars. An IIN is validated wherever it enters the API.

Scalars are declared the way strawberry recommends: a NewType for Python's type checker and
a definition registered in the schema's `scalar_map` (see `SCALAR_MAP`).
"""

from __future__ import annotations

from typing import NewType

import strawberry

from familymap.iin import validate_iin

IIN = NewType("IIN", str)
# Money in tiyn can pass 2^31 (a year of a benefit, a school's monthly act), beyond GraphQL's
# 32-bit Int; a JSON number stays exact up to 2^53, which no sum of ours reaches.
Tiyn = NewType("Tiyn", int)
MAX_SAFE_TIYN = 2**53 - 1


def _parse_tiyn(value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_SAFE_TIYN:
        raise ValueError("an amount is a whole number of tiyn from 0 to 2^53 - 1")
    return value


SCALAR_MAP = {
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
            "An amount of money in tiyn (1/100 of a tenge), a whole number serialised as a JSON "
            "number; exact up to 2^53 - 1."
        ),
        serialize=int,
        parse_value=_parse_tiyn,
    ),
}
