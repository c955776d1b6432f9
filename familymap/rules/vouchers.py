"""The two non-cashable voucher programmes of the Social Wallet: school meals and medicines.

School meals, our choice (documented in the parameters): pupils of grades 1..4 eat free
whatever the family's income (`school_meals.universal_max_grade`); pupils of grades 5..11 only
when the family receives targeted social assistance (ASP) or the large-family benefit. The
voucher is valid for the school year (1 September .. 31 May) and its amount is what the
vouchers package funds: the school days of the year's published calendar times the meals the
voucher covers at the region's prices (familymap.school_calendar.meal_voucher_amount, one
computation for both); the state pays only for meals served. Without a published calendar
there are no school days to price, and the voucher is not offered.

Medicines: a person with at least one chronic condition, attached to a polyclinic and covered
by compulsory health insurance, gets a monthly voucher limit per chronic condition, capped.
"""

from __future__ import annotations

import numpy as np

from familymap.engine.context import Context
from familymap.engine.dates import school_year_bounds, to_day
from familymap.rules.base import (
    ALIVE,
    BOOL,
    PERSON,
    VOUCHER,
    Award,
    RowIndex,
    Rows,
    Rule,
    Verdict,
    condition,
    full,
)
from familymap.school_calendar import meal_voucher_amount, school_year
from familymap.situation import REGIONS

SOCIAL_CODE = "Social Code of the Republic of Kazakhstan of 20 April 2023 No. 224-VII"


class SchoolMeals(Rule):
    """A school-meals voucher for a pupil of grades 1..11: every pupil of grades 1..4, and a
    pupil of grades 5..11 from a family receiving ASP or the large-family benefit."""

    code = "SCHOOL_MEALS"
    title = "School meals voucher"
    kind, unit, version = VOUCHER, PERSON, "2026.1"
    # A voucher is for one school year: the next year's is asked for again.
    renewed = True
    reference = (
        "Law of the RK 'On education' (free and subsidised meals for pupils); "
        "Social Wallet school meals pilot; grade split is our model"
    )

    @condition("in_school", "Enrolled in a general school grade", op="in")
    def in_school(ctx: Context, rows: Rows) -> Verdict:
        grade = ctx.person.school_grade[rows]
        return grade, (1, 11), (grade >= 1) & (grade <= 11)

    alive = ALIVE

    @condition(
        "priority_group",
        "Primary grade (universal), or the family receives ASP or the large-family benefit",
        op="==",
        fmt=BOOL,
    )
    def priority_group(ctx: Context, rows: Rows) -> Verdict:
        supported = ctx.eligible_families("ASP") | ctx.eligible_families("LARGE_FAMILY")
        primary = ctx.person.school_grade[rows] <= ctx.p.int("school_meals.universal_max_grade")
        passed = primary | ctx.of_family(supported, rows)
        return passed, True, passed

    @condition("school_calendar", "School days in the school year's published calendar", op=">=")
    def school_calendar(ctx: Context, rows: Rows) -> Verdict:
        days = np.full(ctx.person.school_grade[rows].shape, _school_days(ctx), dtype=np.int32)
        return days, 1, days >= 1

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        start, end = school_year_bounds(ctx.on)
        # One amount per region, as the vouchers package funds it (in summer: the next year).
        amount = _voucher_amounts(ctx)[ctx.of_family(ctx.family.region, rows)]
        factors = {"school_days": ("int", full(rows, _school_days(ctx)))}
        return Award(amount, full(rows, to_day(start)), full(rows, to_day(end)), factors)


def _school_days(ctx: Context) -> int:
    """School days of the school year the voucher is for; 0 without a published calendar."""

    def build() -> int:
        year = school_year(school_year_bounds(ctx.on)[0], parameters=ctx.p.parameters)
        return 0 if year is None else year.school_days()

    return ctx.p.table("school_days", build)


def _voucher_amounts(ctx: Context) -> np.ndarray:
    """The voucher's amount in each region (REGIONS order), from the one computation."""

    def build() -> np.ndarray:
        start = school_year_bounds(ctx.on)[0]
        return np.array(
            [
                meal_voucher_amount(region=r, on=start, parameters=ctx.p.parameters) or 0
                for r in REGIONS
            ],
            dtype=np.int64,
        )

    return ctx.p.table("meal_voucher_amount", build)


class Medicines(Rule):
    """A monthly medicines voucher for a person with a chronic condition who is attached to a
    polyclinic and insured: a limit in MRP per chronic condition, capped."""

    code = "MEDICINES"
    title = "Medicines voucher (drug provision)"
    kind, unit, version = VOUCHER, PERSON, "2025.1"
    # A voucher is for one month; consent to it stands month after month while the person is
    # entitled, so the next month's voucher is funded without asking again.
    renewed, standing = True, True
    reference = (
        "Code of the RK 'On public health and the healthcare system' (outpatient drug provision); "
        "limits are our model"
    )

    @condition("chronic_conditions", "Chronic conditions on record", op=">=")
    def chronic(ctx: Context, rows: Rows) -> Verdict:
        count = ctx.person.chronic_count[rows]
        return count, 1, count >= 1

    @condition("polyclinic_attached", "Attached to a polyclinic", op="==", fmt=BOOL)
    def attached(ctx: Context, rows: Rows) -> Verdict:
        attached = ctx.person.polyclinic_attached[rows]
        return attached, True, attached

    @condition("insured", "Covered by compulsory social health insurance", op="==", fmt=BOOL)
    def insured(ctx: Context, rows: Rows) -> Verdict:
        insured = ctx.person.insured[rows]
        return insured, True, insured

    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        count = ctx.person.chronic_count[rows].astype(np.int64)
        amount = np.minimum(
            count * ctx.p.mrp("medicines.per_condition_mrp"), ctx.p.mrp("medicines.max_mrp")
        )
        return Award(
            amount,
            full(rows, ctx.month_start_day),
            full(rows, ctx.month_end_day),
            {"conditions": ("int", count)},
        )


VOUCHERS = (SchoolMeals, Medicines)
