"""The IBAN of a Kazakh bank account: validated and normalised here, and nowhere else.

The registry importer and the wallet's `registerBankAccount` both call `normalise_iban`.
python-stdnum's `stdnum.iban` checks the ISO 13616 check digits and the country's BBAN
format. On its own it takes "KZ８６…": its `compact` folds full-width digits to ASCII. We
refuse them instead (digits are ASCII digits), so the value must be ASCII before it is
compacted, and the compact form KZ, two check digits, a 3-digit bank code, 13 letters or
digits.
"""

from __future__ import annotations

import re

from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError

# [0-9], not \d: a Unicode digit is not a digit of an account number.
_KZ_IBAN = re.compile(r"KZ[0-9]{2}[0-9]{3}[0-9A-Z]{13}")


class InvalidIban(ValueError):
    """Not a Kazakh IBAN with valid check digits."""

    code = "INVALID_IBAN"


def normalise_iban(value: object) -> str:
    """The IBAN without spaces, upper-cased, if it is a valid Kazakh one; else InvalidIban."""
    if not isinstance(value, str) or len(value) > 64 or not value.isascii():
        raise InvalidIban("a Kazakh IBAN is KZ followed by 18 ASCII letters and digits")
    compact = stdnum_iban.compact(value)
    if not _KZ_IBAN.fullmatch(compact):
        raise InvalidIban("a Kazakh IBAN is KZ followed by 18 letters and digits (ASCII)")
    try:
        stdnum_iban.validate(compact)
    except ValidationError:
        raise InvalidIban("the IBAN's check digits do not match") from None
    return compact


def is_valid_iban(value: object) -> bool:
    """Tell whether `value` is a valid Kazakh IBAN written in its normal form (as stored)."""
    try:
        return normalise_iban(value) == value
    except InvalidIban:
        return False
