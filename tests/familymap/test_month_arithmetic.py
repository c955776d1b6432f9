"""Month arithmetic: the scalar and vectorised versions agree, and ages use the same rule."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from familymap.engine.dates import (
    NEVER,
    NO_DATE,
    SMALL,
    add_months,
    add_months_days,
    add_months_days_vectorised,
    from_day,
    reached_cutoff,
    to_day,
)

DATES = st.dates(min_value=date(1920, 1, 1), max_value=date(2060, 12, 31))


def test_month_end_clamps():
    assert add_months(date(2024, 8, 31), 6) == date(2025, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)


def test_a_child_born_on_31_august_reaches_18_months_on_28_february():
    cutoff = from_day(reached_cutoff(date(2026, 2, 28), 18))
    assert cutoff == date(2024, 8, 31)
    assert from_day(reached_cutoff(date(2026, 2, 27), 18)) == date(2024, 8, 27)


@settings(max_examples=200, deadline=None)
@given(DATES, st.integers(min_value=-300, max_value=900))
def test_vectorised_add_months_matches_the_scalar_one(d, months):
    vector = add_months_days(np.array([to_day(d)], dtype=np.int32), months)
    assert from_day(int(vector[0])) == add_months(d, months)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(DATES, st.integers(min_value=-300, max_value=900)), min_size=1))
def test_the_small_input_path_and_the_numpy_path_agree(pairs):
    """Short inputs take the memoised scalar path, long ones numpy: both must agree, per element."""
    days = np.array([to_day(d) for d, _ in pairs], dtype=np.int32)
    months = np.array([m for _, m in pairs], dtype=np.int64)
    expected = [to_day(add_months(d, m)) for d, m in pairs]
    assert add_months_days_vectorised(days, months).tolist() == expected
    assert add_months_days(days, months).tolist() == expected  # small or large, per the length
    for i in range(0, len(pairs), SMALL):  # every chunk is small: the scalar path
        assert (
            add_months_days(days[i : i + SMALL], months[i : i + SMALL]).tolist()
            == (expected[i : i + SMALL])
        )
    assert add_months_days(days[:SMALL], int(months[0])).tolist() == (
        add_months_days_vectorised(days[:SMALL], int(months[0])).tolist()
    )


def test_sentinel_days_take_the_numpy_path_whatever_the_size():
    days = np.array([NO_DATE, to_day(date(2024, 1, 31)), NEVER], dtype=np.int32)
    assert add_months_days(days, 1).tolist() == add_months_days_vectorised(days, 1).tolist()


@settings(max_examples=200, deadline=None)
@given(DATES, st.integers(min_value=1, max_value=900))
def test_the_cutoff_is_exactly_the_last_birth_that_has_reached_the_age(on, months):
    cutoff = from_day(reached_cutoff(on, months))
    assert add_months(cutoff, months) <= on
    assert add_months(cutoff + timedelta(days=1), months) > on
