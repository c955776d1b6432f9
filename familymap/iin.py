"""The IIN: Kazakhstan's 12-digit individual identification number.

The last digit is a check digit: the weighted sum of the first eleven digits with weights
1..11, mod 11. If that gives 10, the sum is taken again with weights 3..11,1,2; if it gives 10
again the number cannot be valid. We never read a birth date out of the first six digits
(DOMAIN.md: they are not reliable).
"""

from __future__ import annotations

import re

_FIRST_WEIGHTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_SECOND_WEIGHTS = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)
# ASCII digits only: `\d` (and str.isdigit, int) also take Arabic-Indic or full-width digits,
# and "１２…" would be a second spelling of the same IIN, and a second person.
_TWELVE_DIGITS = re.compile(r"[0-9]{12}")


class InvalidIIN(ValueError):
    """A string that is not a valid IIN (wrong length, not digits, or a bad check digit)."""

    code = "INVALID_IIN"


def check_digit(first_eleven: str) -> int | None:
    """Return the check digit for eleven digits, or None when no check digit exists."""
    if not (len(first_eleven) == 11 and first_eleven.isascii() and first_eleven.isdigit()):
        raise InvalidIIN("eleven ASCII digits are needed to compute a check digit")
    digits = [int(c) for c in first_eleven]
    for weights in (_FIRST_WEIGHTS, _SECOND_WEIGHTS):
        remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
        if remainder != 10:
            return remainder
    return None


def is_valid_iin(value: str) -> bool:
    """Tell whether `value` is twelve digits with a correct check digit."""
    if not isinstance(value, str) or not _TWELVE_DIGITS.fullmatch(value):
        return False
    return check_digit(value[:11]) == int(value[11])


def validate_iin(value: str) -> str:
    """Return `value` if it is a valid IIN, else raise InvalidIIN (without echoing it whole)."""
    if not is_valid_iin(value):
        raise InvalidIIN(f"Not a valid IIN: {mask_iin(str(value))}")
    return value


def mask_iin(value: str) -> str:
    """Mask an IIN for display and logs: keep the first two and last two digits."""
    if len(value) != 12:
        return "*" * min(len(value), 12)
    return f"{value[:2]}********{value[-2:]}"


# A run of exactly twelve digits, not part of a longer number: anything that could be an IIN.
_IIN_IN_TEXT = re.compile(r"(?<!\d)\d{12}(?!\d)")


def mask_iins_in_text(text: str) -> str:
    """Mask every stand-alone run of twelve digits in `text`, valid IIN or not: a mistyped
    IIN is still somebody's personal data. For logs, errors and anything echoed back."""
    return _IIN_IN_TEXT.sub(lambda match: mask_iin(match.group()), text)


def complete_iin(first_eleven: str) -> str | None:
    """Append the check digit to eleven digits, or return None if they can't make an IIN."""
    digit = check_digit(first_eleven)
    return None if digit is None else first_eleven + str(digit)
