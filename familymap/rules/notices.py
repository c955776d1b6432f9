"""Automatic notices: no money (amount 0), the period is the date the notice is about."""

from __future__ import annotations

import numpy as np

from familymap.engine.context import Context
from familymap.engine.dates import NO_DATE, add_months_days
from familymap.rules.base import (
    ALIVE,
    BELOW_PENSION_AGE,
    BOOL,
    DATE,
    NOTICE,
    PERSON,
    Award,
    RowIndex,
    Rows,
    Rule,
    Verdict,
    condition,
    full,
)

SOCIAL_CODE = "Social Code of the Republic of Kazakhstan of 20 April 2023 No. 224-VII"


class PensionAgeNotice(Rule):
    """Tells a person that they reach (or have just reached) pension age, 63 for men and 61 for
    women, and so have the right to apply for pension payments: sent when the pension date
    falls between `after_days` ago and `lead_days` ahead."""

    code = "PENSION_AGE_NOTICE"
    title = "Right to pension payments"
    kind, unit, version = NOTICE, PERSON, "2025.1"
    reference = f"{SOCIAL_CODE}: pension payments by age; notice window is our model"

    @condition(
        "reaches_by_window_end",
        "Reaches pension age by the end of the notice window",
        op="<=",
        fmt=DATE,
    )
    def reaches_soon(ctx: Context, rows: Rows) -> Verdict:
        birth = ctx.person.birth_date[rows]
        cutoff = ctx.pension_cutoff(rows, on=ctx.on_plus(ctx.p.int("pension_notice.lead_days")))
        return birth, cutoff, birth <= cutoff

    @condition(
        "not_reached_before_window",
        "Had not reached pension age before the notice window",
        op=">",
        fmt=DATE,
    )
    def not_before(ctx: Context, rows: Rows) -> Verdict:
        birth = ctx.person.birth_date[rows]
        cutoff = ctx.pension_cutoff(rows, on=ctx.on_plus(-ctx.p.int("pension_notice.after_days")))
        return birth, cutoff, birth > cutoff

    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        date = add_months_days(ctx.person.birth_date[rows], ctx.pension_months(rows))
        return Award(np.zeros(len(rows), dtype=np.int64), date, date)


class KandasExpiryNotice(Rule):
    """Tells a kandas (ethnic Kazakh returnee) that their status expires within the lead
    window, so that they can apply for citizenship or an extension in time."""

    code = "KANDAS_EXPIRY_NOTICE"
    title = "Kandas status expiring"
    kind, unit, version = NOTICE, PERSON, "2025.1"
    reference = (
        "Law of the RK 'On migration of population' (kandas status); lead window is our model"
    )

    @condition("kandas_active", "Kandas status valid on the date (valid until)", op=">=", fmt=DATE)
    def active(ctx: Context, rows: Rows) -> Verdict:
        until = ctx.person.kandas_until[rows]
        return until, ctx.day, until >= ctx.day

    @condition("expires_soon", "Kandas status expires within the lead window", op="<=", fmt=DATE)
    def expires_soon(ctx: Context, rows: Rows) -> Verdict:
        until = ctx.person.kandas_until[rows]
        last = ctx.after_days(ctx.p.int("kandas_notice.lead_days"))
        return until, last, until <= last

    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        until = ctx.person.kandas_until[rows]
        return Award(np.zeros(len(rows), dtype=np.int64), until, until)


class KandasStatusNotice(Rule):
    """Tells a kandas (ethnic Kazakh returnee) that their status is valid and until when: when
    it is granted (a new entitlement) and again whenever its term changes, an extension most
    often (a changed entitlement, whose period is the new date)."""

    code = "KANDAS_STATUS_NOTICE"
    title = "Kandas status granted or extended"
    kind, unit, version = NOTICE, PERSON, "2026.1"
    reference = "Law of the RK 'On migration of population' (kandas status, its term and extension)"

    @condition("kandas_active", "Kandas status valid on the date (valid until)", op=">=", fmt=DATE)
    def active(ctx: Context, rows: Rows) -> Verdict:
        until = ctx.person.kandas_until[rows]
        return until, ctx.day, until >= ctx.day

    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        until = ctx.person.kandas_until[rows]
        return Award(np.zeros(len(rows), dtype=np.int64), until, until)


class EmploymentMeasuresNotice(Rule):
    """Offers active employment measures (training, subsidised jobs, microcredits) to a person
    registered as unemployed, of working age."""

    code = "EMPLOYMENT_MEASURES_NOTICE"
    title = "Employment measures for the unemployed"
    kind, unit, version = NOTICE, PERSON, "2025.1"
    reference = f"{SOCIAL_CODE}: active measures to promote employment"

    @condition("registered_unemployed", "Registered as unemployed", op="==", fmt=BOOL)
    def registered(ctx: Context, rows: Rows) -> Verdict:
        registered = ctx.person.registered_unemployed[rows]
        return registered, True, registered

    @condition(
        "working_age",
        "Has reached the minimum working age (born on or before the cutoff)",
        op="<=",
        fmt=DATE,
    )
    def working_age(ctx: Context, rows: Rows) -> Verdict:
        birth = ctx.person.birth_date[rows]
        cutoff = ctx.cutoff(ctx.p.int("employment_notice.min_age_months"))
        return birth, cutoff, birth <= cutoff

    below_pension_age = BELOW_PENSION_AGE
    alive = ALIVE

    @staticmethod
    def award(ctx: Context, rows: RowIndex) -> Award:
        # About the day the job was lost, so that the notice says it and one spell of
        # unemployment is one fact; the day it is found when no job loss is on record.
        lost = ctx.person.job_lost_on[rows]
        about = np.where(lost != NO_DATE, lost, full(rows, ctx.day)).astype(np.int32)
        return Award(np.zeros(len(rows), dtype=np.int64), about, about)


NOTICES = (PensionAgeNotice, KandasExpiryNotice, KandasStatusNotice, EmploymentMeasuresNotice)
