"""Custom scalars. An IIN is validated wherever it enters the API.

Scalars are declared the way strawberry recommends: a NewType for Python's type checker and
a definition registered in the schema's `scalar_map` (see `SCALAR_MAP`).
"""

from __future__ import annotations

from typing import NewType

import strawberry

from familymap.iin import validate_iin

IIN = NewType("IIN", str)

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
}
