"""Monthly acts of services rendered, and the invoices built on approved acts.

An act lists a merchant's services of one month by day with their amounts (read from the
meals served or medicines dispensed) and the families' feedback summary, flagged for review
when the average rating falls below, or the share of complaints (rating <= 2) rises above,
the thresholds in the parameters (`acts.*`). Its life: draft -> submitted (by the merchant)
-> approved (by an operator). Every change is a conditional UPDATE on the expected status, so
an approved act is never changed (ACT_IMMUTABLE); what was served after it is drawn into a
new adjustment act that references it (`sequence` 1, 2, ...), with only the difference: its
services and amounts, its late claims and the feedback its predecessors did not count, so
that its review flags are its own and not the month's again.

An act is for an ended month only (in Kazakhstan time): MONTH_NOT_ENDED before the 1st of the
next month, when it is drawn, submitted, approved or invoiced. A meal claimed after its day (from the
list, within the claim window) is a late claim: each line counts them (`late_services`), and
an act with any is flagged for review (LATE_CLAIMS).

An invoice is issued from an approved act for exactly its total; paying it moves that amount
from the merchant's account to `settlement:merchants` (INVOICE_PAID), once.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime
from typing import Any

from sqlalchemy import Integer, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.orm import utcnow
from familymap.parameters import ParameterError, ParameterSet, default_parameters
from vouchers.errors import (
    ActImmutable,
    ActNotApproved,
    ActStateConflict,
    Forbidden,
    InvalidInput,
    MonthNotEnded,
    NotFound,
)
from vouchers.merchants import get_merchant
from vouchers.tables import Dispensing, Feedback, Invoice, MealRedemption, MerchantAct
from wallet.ledger import Reason, open_account, transfer

SETTLEMENT = "settlement:merchants"
COMPLAINT_MAX_RATING = 2


def month_bounds(month: date) -> tuple[date, date]:
    """First day of `month` and first day of the next."""
    first = month.replace(day=1)
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return first, following


def _refuse_a_month_without_rules(first: date, parameters: ParameterSet | None) -> None:
    """An act is drawn by the review rules of its month; a month no rules cover (before the
    programme, or years ahead) has no act to draw."""
    ps = parameters or default_parameters()
    try:
        ps.get("acts.review_min_feedback", first)
    except ParameterError:
        raise InvalidInput("refusal.no_act_rules", month=f"{first:%Y-%m}") from None


def refuse_a_month_not_ended(month: date, *, today: date) -> None:
    """MONTH_NOT_ENDED unless `month` was over before `today` (Kazakhstan's local day)."""
    first, following = month_bounds(month)
    if today < following:
        raise MonthNotEnded("refusal.month_not_ended", month=f"{first:%Y-%m}", from_day=following)


async def prepare_act(
    *,
    session: AsyncSession,
    merchant_id: uuid.UUID | str,
    month: date,
    today: date,
    parameters: ParameterSet | None = None,
) -> MerchantAct:
    """The ended month's act as it should stand now: draw it, refresh a draft, or draw an
    adjustment for what was served after the last approved act."""
    merchant = await get_merchant(session=session, merchant_id=merchant_id)
    first, _ = month_bounds(month)
    _refuse_a_month_without_rules(first, parameters)
    refuse_a_month_not_ended(first, today=today)
    acts = list(
        await session.scalars(
            select(MerchantAct)
            .where(MerchantAct.merchant_id == merchant.id, MerchantAct.month == first)
            .order_by(MerchantAct.sequence)
        )
    )
    by_day = await _services_by_day(session, merchant.id, merchant.category, first)
    latest = acts[-1] if acts else None
    if latest is not None and latest.status == "submitted":
        return latest  # waiting for an operator; the merchant cannot change it meanwhile
    approved = [act for act in acts if act.status == "approved"]
    # What earlier approved acts of the month already claimed, by day.
    claimed: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for act in approved:
        for line in act.lines:
            claimed[line["day"]][0] += line["services"]
            claimed[line["day"]][1] += line["amount_tiyn"]
            claimed[line["day"]][2] += line.get("late_services", 0)
    lines = []
    for day, (services, amount, late) in sorted(by_day.items()):
        services -= claimed[day][0]
        amount -= claimed[day][1]
        late -= claimed[day][2]
        if services or amount:
            line = {"day": day, "services": services, "amount_tiyn": amount}
            lines.append(line | ({"late_services": late} if late else {}))
    feedback = await _feedback_summary(session, merchant.id, first, parameters, counted=approved)
    if any(line.get("late_services") for line in lines):
        feedback["flag_reasons"].append("LATE_CLAIMS")
        feedback["flagged_for_review"] = True
    content = {
        "lines": lines,
        "services": sum(line["services"] for line in lines),
        "total_tiyn": sum(line["amount_tiyn"] for line in lines),
        **feedback,
    }
    if latest is not None and latest.status == "draft":
        await session.execute(
            update(MerchantAct)
            .where(MerchantAct.id == latest.id, MerchantAct.status == "draft")
            .values(**content)
            .execution_options(synchronize_session=False)
        )
        await session.refresh(latest)
        return latest
    if latest is not None and not lines:
        return latest  # approved, and nothing served since
    act = MerchantAct(
        merchant_id=merchant.id,
        month=first,
        sequence=0 if latest is None else latest.sequence + 1,
        adjusts_act_id=None if latest is None else acts[0].id,
        status="draft",
        **content,
    )
    try:
        async with session.begin_nested():
            session.add(act)
    except IntegrityError as exc:
        raise ActStateConflict("refusal.act_drawn_concurrently") from exc
    return act


async def _services_by_day(
    session: AsyncSession, merchant_id: uuid.UUID, category: str, first: date
) -> dict[str, tuple[int, int, int]]:
    """(services, amount, late claims) by day of the month."""
    _, following = month_bounds(first)
    table = MealRedemption if category == "school_meals" else Dispensing
    if table is MealRedemption:
        amount = MealRedemption.price_tiyn
        late = func.sum((MealRedemption.claimed_on > MealRedemption.service_date).cast(Integer))
    else:
        # A dispensing is always of the day it is recorded: never late.
        amount, late = Dispensing.amount_tiyn, func.sum(0)
    rows = await session.execute(
        select(table.service_date, func.count(), func.sum(amount), late)
        .where(
            table.merchant_id == merchant_id,
            table.service_date >= first,
            table.service_date < following,
        )
        .group_by(table.service_date)
    )
    return {
        day.isoformat(): (int(count), int(total), int(late or 0))
        for day, count, total, late in rows
    }


def _rating_total(act: MerchantAct) -> int:
    """The ratings an act counted, summed (recovered from its average on acts drawn before
    the sum was kept)."""
    if act.feedback_rating_total is not None:
        return act.feedback_rating_total
    if not act.feedback_count or act.feedback_average_x100 is None:
        return 0
    return (act.feedback_average_x100 * act.feedback_count + 50) // 100


def _count_parameter(ps: ParameterSet, name: str, on: date) -> int:
    """A number parameter as an int (a mapping there is a broken parameter file)."""
    value = ps.get(name, on)
    if not isinstance(value, int | float):
        raise ParameterError("PARAMETER_INVALID", f"{name} must be a number", name=name)
    return int(value)


async def _feedback_summary(
    session: AsyncSession,
    merchant_id: uuid.UUID,
    first: date,
    parameters: ParameterSet | None,
    *,
    counted: list[MerchantAct],
) -> dict[str, Any]:
    """The month's feedback less what the `counted` (approved) acts reported already."""
    _, following = month_bounds(first)
    ps = parameters or default_parameters()
    count, total, complaints = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(Feedback.rating), 0),
                func.coalesce(func.sum((Feedback.rating <= COMPLAINT_MAX_RATING).cast(Integer)), 0),
            ).where(
                Feedback.merchant_id == merchant_id,
                Feedback.service_date >= first,
                Feedback.service_date < following,
            )
        )
    ).one()
    count = int(count) - sum(act.feedback_count for act in counted)
    total = int(total) - sum(_rating_total(act) for act in counted)
    complaints = int(complaints) - sum(act.complaints for act in counted)
    average_x100 = (total * 100 + count // 2) // count if count else None
    reasons = []
    minimum = _count_parameter(ps, "acts.review_min_feedback", first)
    # No rating at all has no average: nothing to judge, even where any count is enough.
    if average_x100 is not None and count >= minimum:
        if average_x100 < _count_parameter(ps, "acts.review_min_average_rating_x100", first):
            reasons.append("LOW_AVERAGE_RATING")
        # complaints / count > max% , in integers.
        if complaints * 100 > count * _count_parameter(
            ps, "acts.review_max_complaint_share_pct", first
        ):
            reasons.append("MANY_COMPLAINTS")
    return {
        "feedback_count": count,
        "feedback_average_x100": average_x100,
        "feedback_rating_total": total,
        "complaints": complaints,
        "flagged_for_review": bool(reasons),
        "flag_reasons": reasons,
    }


async def get_act(*, session: AsyncSession, act_id: int) -> MerchantAct:
    """The act with this id, or NOT_FOUND."""
    act = await session.get(MerchantAct, act_id)
    if act is None:
        raise NotFound("refusal.no_such_act")
    return act


async def submit_act(
    *, session: AsyncSession, act_id: int, merchant_id: uuid.UUID | str, today: date
) -> MerchantAct:
    """The merchant submits its draft act of an ended month for approval; a replay returns
    it as it is."""
    act = await get_act(session=session, act_id=act_id)
    if str(act.merchant_id) != str(merchant_id):
        raise Forbidden("refusal.act_of_another_merchant")
    if act.status == "submitted":
        return act
    if act.status == "draft":
        # A draft drawn before months had to end (or by other code) is not submitted early.
        refuse_a_month_not_ended(act.month, today=today)
    return await _move(session, act, "draft", "submitted", submitted_at=utcnow())


async def approve_act(
    *, session: AsyncSession, act_id: int, operator: str, today: date
) -> MerchantAct:
    """An operator approves a submitted act of an ended month; from then on it never changes."""
    act = await get_act(session=session, act_id=act_id)
    if act.status == "approved":
        return act
    if act.status == "submitted":
        refuse_a_month_not_ended(act.month, today=today)
    return await _move(
        session, act, "submitted", "approved", approved_at=utcnow(), approved_by=operator
    )


async def _move(
    session: AsyncSession, act: MerchantAct, old: str, new: str, **values: datetime | str
) -> MerchantAct:
    moved = await session.execute(
        update(MerchantAct)
        .where(MerchantAct.id == act.id, MerchantAct.status == old)
        .values(status=new, **values)
        .returning(MerchantAct.id)
        .execution_options(synchronize_session=False)
    )
    if moved.first() is None:
        await session.refresh(act)
        if act.status == "approved":
            raise ActImmutable("refusal.act_immutable")
        raise ActStateConflict("refusal.act_state", status=act.status, expected=old)
    await session.refresh(act)
    return act


async def issue_invoice(*, session: AsyncSession, act_id: int, today: date) -> Invoice:
    """The invoice for an approved act of an ended month, for exactly its total; once per act."""
    act = await get_act(session=session, act_id=act_id)
    if act.status != "approved":
        raise ActNotApproved("refusal.act_not_approved")
    if act.total_tiyn <= 0:
        raise InvalidInput("refusal.act_claims_nothing")
    existing = await session.scalar(select(Invoice).where(Invoice.act_id == act.id))
    if existing is not None:
        return existing
    # An act approved before months had to end is not invoiced before its month is over.
    refuse_a_month_not_ended(act.month, today=today)
    invoice = Invoice(
        act_id=act.id, merchant_id=act.merchant_id, amount_tiyn=act.total_tiyn, status="issued"
    )
    try:
        async with session.begin_nested():
            session.add(invoice)
    except IntegrityError:
        raced = await session.scalar(select(Invoice).where(Invoice.act_id == act.id))
        if raced is None:
            raise
        return raced
    return invoice


async def pay_invoice(*, session: AsyncSession, invoice_id: int) -> Invoice:
    """Pay the invoice: its amount leaves the merchant's account for settlement; once."""
    invoice = await session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound("refusal.no_such_invoice")
    if invoice.status == "paid":
        return invoice
    transfer_id = f"invoice:{invoice.id}"
    await open_account(session=session, code=SETTLEMENT, kind="settlement")
    await transfer(
        session=session,
        transfer_id=transfer_id,
        debit=f"merchant:{invoice.merchant_id}",
        credit=SETTLEMENT,
        amount=invoice.amount_tiyn,
        reason=Reason.INVOICE_PAID,
        metadata={"invoice_id": invoice.id, "act_id": invoice.act_id},
    )
    await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id, Invoice.status == "issued")
        .values(status="paid", paid_at=utcnow(), transfer_id=transfer_id)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(invoice)
    return invoice
