"""Custom scalars. An IIN is validated wherever it enters the API.

Scalars are declared the way strawberry recommends: a NewType for Python's type checker and
a definition registered in the schema's `scalar_map` (see `SCALAR_MAP`).
"""

from __future__ import annotations

from typing import NewType

import strawberry

from familymap.iin import validate_iin

IIN = NewType("IIN", str)
# Money in tiyn that may pass 2^31 (a school's monthly act): an integer JSON number, exact in
# JavaScript up to 2^53 - 1 (90 trillion tenge), so clients need no string parsing.
SafeInt = NewType("SafeInt", int)
MAX_SAFE_INTEGER = 2**53 - 1


def _safe_int(value: object) -> int:
    if type(value) is not int or not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        raise ValueError("SafeInt must be an integer within +-(2^53 - 1)")
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
    SafeInt: strawberry.scalar(
        name="SafeInt",
        description="A whole number within +-(2^53 - 1), exact in JavaScript; money in tiyn.",
        serialize=_safe_int,
        parse_value=_safe_int,
    ),
}
