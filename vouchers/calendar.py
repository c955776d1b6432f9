"""School days and meal prices for the vouchers package.

They are defined once, in familymap.school_calendar, because the school-meals eligibility
rule prices the voucher with the same calendar and prices as the funding does.
"""

from familymap.school_calendar import (
    MONDAY_TO_FRIDAY,
    SchoolYear,
    is_school_day,
    meal_price,
    meal_types,
    meal_voucher_amount,
    school_year,
)

__all__ = [
    "MONDAY_TO_FRIDAY",
    "SchoolYear",
    "is_school_day",
    "meal_price",
    "meal_types",
    "meal_voucher_amount",
    "school_year",
]
