"""Custom scalars. An IIN is validated wherever it enters the API.

Scalars are declared the way strawberry recommends: a NewType for Python's type checker and
a definition registered in the schema's `scalar_map` (see `SCALAR_MAP`).
"""

from __future__ import annotations

from typing import NewType

import strawberry

from familymap.iin import validate_iin

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
