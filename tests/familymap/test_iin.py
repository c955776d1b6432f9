"""The IIN check digit, per DOMAIN.md."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from familymap.iin import (
    InvalidIIN,
    check_digit,
    complete_iin,
    is_valid_iin,
    mask_iin,
    validate_iin,
)


def test_check_digit_first_pass():
    # Given eleven digits whose first weighted sum is not 10 mod 11
    first_eleven = "90010130012"
    # When we compute the check digit
    expected = sum(int(d) * w for d, w in zip(first_eleven, range(1, 12), strict=True)) % 11
    # Then it is that sum mod 11
    assert expected != 10
    assert check_digit(first_eleven) == expected
    assert is_valid_iin(first_eleven + str(expected))


def test_check_digit_second_pass_when_first_gives_ten():
    # Given eleven digits whose first weighted sum is 10 mod 11 (found by search, fixed here)
    first_eleven = next(
        f"{n:011d}"
        for n in range(10**10, 10**10 + 10_000)
        if sum(int(d) * w for d, w in zip(f"{n:011d}", range(1, 12), strict=True)) % 11 == 10
        and sum(
            int(d) * w
            for d, w in zip(f"{n:011d}", (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2), strict=True)
        )
        % 11
        != 10
    )
    second = (
        sum(
            int(d) * w
            for d, w in zip(first_eleven, (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2), strict=True)
        )
        % 11
    )
    assert check_digit(first_eleven) == second
    assert complete_iin(first_eleven) == first_eleven + str(second)


def test_no_check_digit_when_both_passes_give_ten():
    impossible = next(
        f"{n:011d}"
        for n in range(10**10, 10**10 + 100_000)
        if sum(int(d) * w for d, w in zip(f"{n:011d}", range(1, 12), strict=True)) % 11 == 10
        and sum(
            int(d) * w
            for d, w in zip(f"{n:011d}", (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2), strict=True)
        )
        % 11
        == 10
    )
    assert check_digit(impossible) is None
    assert complete_iin(impossible) is None
    assert not any(is_valid_iin(impossible + str(d)) for d in range(10))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "12345678901",
        "1234567890123",
        "12345678901a",
        " 90010130012x",
        "１２３４５６７８９０１２",
    ],
)
def test_malformed_values_are_refused(bad):
    assert not is_valid_iin(bad)
    with pytest.raises(InvalidIIN) as raised:
        validate_iin(bad)
    assert raised.value.code == "INVALID_IIN"


# ASCII digits: with `\d` hypothesis also drew Arabic-Indic and full-width digits, which
# are not digits of an IIN (see the test below).
@given(st.from_regex(r"[0-9]{11}", fullmatch=True))
def test_exactly_one_last_digit_is_valid_or_none(first_eleven):
    valid = [d for d in range(10) if is_valid_iin(first_eleven + str(d))]
    digit = check_digit(first_eleven)
    assert valid == ([] if digit is None else [digit])


def test_mask_keeps_only_the_ends():
    assert mask_iin("900101300123") == "90********23"
    assert "0101300" not in mask_iin("900101300123")


@given(st.from_regex(r"\d{12}", fullmatch=True).filter(lambda s: not s.isascii()))
def test_digits_that_are_not_ascii_never_make_an_iin(value):
    # Given twelve digits, some of them Unicode digits that int() would read
    # When they are checked
    # Then they are no IIN, whatever their check digit
    assert not is_valid_iin(value)
    with pytest.raises(InvalidIIN):
        validate_iin(value)


def test_a_full_width_copy_of_a_valid_iin_is_refused():
    # Given a valid IIN and the same digits in full width (U+FF10..U+FF19)
    valid = "900101300126"
    full_width = "".join(chr(0xFF10 + int(d)) for d in valid)
    # Then the copy is refused, and no check digit is computed for it
    assert is_valid_iin(valid)
    assert not is_valid_iin(full_width)
    with pytest.raises(InvalidIIN):
        check_digit(full_width[:11])
