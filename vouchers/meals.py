"""School meals: issue a child's voucher for the school year, show its QR, redeem meals.

A redemption is one row in `meal_redemptions` and one MEAL_SERVED transfer in the ledger
(child's meals wallet -> the school's account), in the same transaction. Double spending is
refused by construction: the row is unique per (voucher, day, meal type), inserted with
`ON CONFLICT DO NOTHING` so that a loser of a race learns it lost without an error, and the
ledger's conditional UPDATE refuses to overdraw the wallet.

A canteen's idempotency keys are its own: the same key at two schools is two meals, and only
the school that used a key first gets its replay.

The day a meal is for is checked here, in `validate_meal_request`, which every path (this
portable one, the hot path, the groups and the batch) calls: a QR meal is for the school's
local day its code was issued (QR_NOT_FOR_THIS_DAY otherwise), a meal from the list or an
offline batch within the claim window (CLAIM_WINDOW_CLOSED otherwise). The day it was
claimed is recorded with it (`claimed_on`), so that an act can show the late claims.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from familymap.audit import Caller, Entry
from familymap.i18n import Term
from familymap.orm import utcnow
from familymap.parameters import ParameterSet
from familymap.school_calendar import SchoolYear
from familymap.tables import Entitlement, Family, Person
from vouchers.calendar import (
    claim_window,
    local_day,
    meal_price,
    meal_voucher_amount,
    school_days_after,
    school_year,
)
from vouchers.errors import (
    AlreadyRedeemed,
    ClaimWindowClosed,
    IdempotencyKeyReused,
    InvalidInput,
    NotASchoolDay,
    NotEligible,
    NotEnrolled,
    NotFound,
    NotYourChild,
    NoVoucher,
    QrInvalid,
    QrNotForThisDay,
    QrReplayed,
    VoucherError,
    WrongSchool,
)
from vouchers.merchants import get_merchant
from vouchers.qr import DEFAULT_TTL, QrClaims, check_unexpired, sign_qr, verify_qr
from vouchers.tables import MEAL_TYPES, MealRedemption, MealVoucher, Merchant
from wallet.ledger import (
    LedgerError,
    NewTransfer,
    Reason,
    open_account,
    post_new_transfers,
    transfer,
)

PURPOSE = "school_meals"
# A meal's row, as the table defines it: `validate_meal_request` fills every column but the
# id and the time of the insert, and every path's INSERT is built from this list.
MEAL_COLUMNS = tuple(c.name for c in MealRedemption.__table__.c)
PROGRAMME = "SCHOOL_MEALS"
PROGRAMME_ACCOUNT = f"programme:{PROGRAMME}"
PARENT_ROLES = ("head", "spouse")


def wallet_code(person_id: int) -> str:
    """The child's school-meals wallet in the ledger."""
    return f"person:{person_id}:{PURPOSE}"


def meal_transfer_id(voucher_id: int, served_on: date, meal_type: str) -> str:
    """The ledger id of a meal: one per voucher, day and meal type, like the redemption."""
    return f"meal:{voucher_id}:{served_on.isoformat()}:{meal_type}"


# --- Issuing --------------------------------------------------------------------------------


async def issue_meal_voucher(
    *,
    session: AsyncSession,
    child_person_id: int,
    school_year: date,
    consented_by: int | None,
    channel: str,
    parameters: ParameterSet | None = None,
) -> tuple[MealVoucher, bool]:
    """Issue and fund the child's voucher for the school year containing `school_year`;
    idempotent. Returns (voucher, created)."""
    year = _school_year_or_refuse(school_year, parameters)
    child = await session.get(Person, child_person_id)
    if child is None:
        raise NotFound("refusal.no_such_child")
    entitled = await session.scalar(
        select(Entitlement.id).where(
            Entitlement.person_id == child.id, Entitlement.programme == PROGRAMME
        )
    )
    if entitled is None:
        raise NotEligible("refusal.no_meals_entitlement")
    existing = await _voucher_for(session, child.id, year.start)
    if existing is not None:
        return existing, False
    family = await session.get(Family, child.family_id)
    assert family is not None  # persons.family_id is a foreign key
    # The same computation the eligibility rule offers the voucher at.
    amount = meal_voucher_amount(region=family.region, on=year.start, parameters=parameters)
    assert amount is not None  # the school year's calendar was found above
    voucher = MealVoucher(
        family_id=child.family_id,
        person_id=child.id,
        school_year_start=year.start,
        school_year_end=year.end,
        amount_tiyn=amount,
        consented_by_person_id=consented_by,
        channel=channel,
    )
    try:
        async with session.begin_nested():
            session.add(voucher)
    except IntegrityError:
        # Consent given twice at once (SMS and app): the other one issued it.
        raced = await _voucher_for(session, child.id, year.start)
        if raced is None:
            raise
        return raced, False
    await open_account(
        session=session, code=PROGRAMME_ACCOUNT, kind="budget_programme", purpose=PURPOSE
    )
    await open_account(
        session=session,
        code=wallet_code(child.id),
        kind="purpose_wallet",
        purpose=PURPOSE,
        family_id=child.family_id,
        person_id=child.id,
    )
    await transfer(
        session=session,
        transfer_id=f"voucher-funding:{PURPOSE}:{child.id}:{year.start.isoformat()}",
        debit=PROGRAMME_ACCOUNT,
        credit=wallet_code(child.id),
        amount=voucher.amount_tiyn,
        reason=Reason.VOUCHER_FUNDING,
        metadata={"meal_voucher_id": voucher.id},
    )
    return voucher, True


async def consent_to_meal_voucher(
    *,
    session: AsyncSession,
    parent_iin: str,
    child_person_id: int,
    on: date,
    parameters: ParameterSet | None = None,
) -> tuple[MealVoucher, bool]:
    """A parent's consent in the app: issue their own child's voucher; idempotent."""
    parent, child = await own_child(
        session=session, parent_iin=parent_iin, child_id=child_person_id
    )
    return await issue_meal_voucher(
        session=session,
        child_person_id=child.id,
        school_year=on,
        consented_by=parent.id,
        channel="app",
        parameters=parameters,
    )


async def own_child(
    *, session: AsyncSession, parent_iin: str, child_id: int
) -> tuple[Person, Person]:
    """(parent, child) when the caller is a parent in the child's family; NOT_YOUR_CHILD else."""
    parent = await session.scalar(select(Person).where(Person.iin == parent_iin))
    child = await session.get(Person, child_id)
    if (
        parent is None
        or child is None
        or parent.role not in PARENT_ROLES
        or child.role != "child"
        or child.family_id != parent.family_id
    ):
        # The same answer for "no such child" and "not yours": ids are not probed this way.
        raise NotYourChild("refusal.not_your_child")
    return parent, child


def _school_year_or_refuse(on: date, parameters: ParameterSet | None) -> SchoolYear:
    year = school_year(on, parameters=parameters)
    if year is None:
        raise NotASchoolDay("refusal.no_school_calendar", day=on)
    return year


async def _voucher_for(session: AsyncSession, person_id: int, start: date) -> MealVoucher | None:
    return await session.scalar(
        select(MealVoucher).where(
            MealVoucher.person_id == person_id, MealVoucher.school_year_start == start
        )
    )


# --- The QR code ----------------------------------------------------------------------------


async def meal_qr_token(
    *,
    session: AsyncSession,
    parent_iin: str,
    child_person_id: int,
    key: bytes,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    parameters: ParameterSet | None = None,
) -> tuple[str, QrClaims]:
    """A fresh dynamic QR token for the parent's child at the child's school."""
    _, child = await own_child(session=session, parent_iin=parent_iin, child_id=child_person_id)
    year = _school_year_or_refuse(local_day(now), parameters)
    voucher = await _voucher_for(session, child.id, year.start)
    if voucher is None:
        raise NoVoucher("refusal.no_meals_voucher_this_year")
    school = await school_of(session=session, child=child)
    return sign_qr(
        key=key,
        voucher_id=voucher.id,
        child_person_id=child.id,
        merchant_id=str(school.id),
        now=now,
        ttl=ttl,
    )


async def school_of(*, session: AsyncSession, child: Person) -> Merchant:
    """The school merchant the child is enrolled at; NOT_ENROLLED if none is registered."""
    school = None
    if child.school_id:
        school = await session.scalar(
            select(Merchant).where(
                Merchant.external_code == child.school_id, Merchant.category == PURPOSE
            )
        )
    if school is None:
        raise NotEnrolled("refusal.not_at_a_meals_school")
    return school


# --- Redeeming ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MealRequest:
    """One redemption as the canteen asks for it: by QR token, or by picking the child."""

    idempotency_key: str
    meal_type: str
    served_on: date
    qr_token: str | None = None
    child_person_id: int | None = None


@dataclass(frozen=True, slots=True)
class Redeemed:
    """A meal served (or, `replayed`, served before under the same idempotency key)."""

    redemption: MealRedemption
    replayed: bool


@dataclass(frozen=True, slots=True)
class BatchItemResult:
    """One item of a batch: the meal, or the code and reason it was refused."""

    idempotency_key: str
    redeemed: Redeemed | None = None
    code: str | None = None
    message: str | None = None
    # The refusal itself, so the API can say it in the caller's language.
    refused: Exception | None = None


@dataclass(slots=True)
class ChildVoucher:
    """A pupil, the school they are enrolled at, and their voucher of one school year."""

    person_id: int
    family_id: int
    school_id: str | None
    voucher_id: int | None
    year_start: date


async def redeem_meal(
    *,
    session: AsyncSession,
    merchant_id: uuid.UUID | str,
    request: MealRequest,
    qr_key: bytes,
    now: datetime,
    parameters: ParameterSet | None = None,
) -> Redeemed:
    """Serve one meal at the merchant's canteen and pay for it from the child's voucher."""
    school = await get_merchant(session=session, merchant_id=merchant_id, category=PURPOSE)
    try:
        row = await validate_meal_request(
            session, school, request, qr_key=qr_key, now=now, parameters=parameters, children={}
        )
        redemption = await _insert_or_nothing(session, row)
        if redemption is None:
            raise await _why_not_inserted(session, row)
    except VoucherError:
        # A replay of a request that succeeded returns its first result, even if the QR token
        # has expired since; only a refusal pays for this extra look-up. Every VoucherError is
        # raised before the redemption row is written (a ledger refusal comes after it, and
        # fails the whole transaction), so what this finds was committed before.
        replay = await _replay(session, school, request, qr_key)
        if replay is not None:
            return replay
        raise
    await post_new_transfers(session=session, transfers=[meal_payment(school, redemption)])
    return Redeemed(redemption, replayed=False)


async def redeem_meals_batch(
    *,
    session: AsyncSession,
    merchant_id: uuid.UUID | str,
    requests: Sequence[MealRequest],
    qr_key: bytes,
    now: datetime,
    parameters: ParameterSet | None = None,
) -> list[BatchItemResult]:
    """Serve a canteen's offline batch: a result per item, in order.

    The batch is one transaction (one commit). Its fast path checks every item in memory
    against the children, vouchers and earlier results read in three statements, inserts all
    the good meals in one INSERT ... ON CONFLICT DO NOTHING, and pays them all through the
    ledger in three more statements, inside a savepoint. Should the ledger refuse any of it
    (a wallet run dry), the savepoint is rolled back and the batch goes item by item, each in
    its own savepoint, so that one refusal never undoes the others.
    """
    school = await get_merchant(session=session, merchant_id=merchant_id, category=PURPOSE)
    children = await _preload_children(session, requests, qr_key)
    done = await _preload_done(session, school, [r.idempotency_key for r in requests])
    try:
        async with session.begin_nested():
            return await _batch_at_once(
                session, school, requests, qr_key=qr_key, now=now, parameters=parameters,
                children=children, done=dict(done),
            )  # fmt: skip
    except LedgerError:
        pass
    results = []
    for request in requests:
        try:
            if request.idempotency_key in done:
                redeemed = await _replay(session, school, request, qr_key, done=done)
                assert redeemed is not None
            else:
                async with session.begin_nested():
                    row = await validate_meal_request(
                        session, school, request, qr_key=qr_key, now=now,
                        parameters=parameters, children=children,
                    )  # fmt: skip
                    redemption = await _insert_or_nothing(session, row)
                    if redemption is None:
                        raise await _why_not_inserted(session, row)
                    await post_new_transfers(
                        session=session, transfers=[meal_payment(school, redemption)]
                    )
                redeemed = Redeemed(redemption, replayed=False)
            done[request.idempotency_key] = redeemed.redemption
            results.append(BatchItemResult(request.idempotency_key, redeemed=redeemed))
        except (VoucherError, LedgerError) as refused:
            results.append(await _refusal_or_replay(session, school, request, qr_key, refused))
    return results


async def _batch_at_once(
    session: AsyncSession,
    school: Merchant,
    requests: Sequence[MealRequest],
    *,
    qr_key: bytes,
    now: datetime,
    parameters: ParameterSet | None,
    children: dict[int, ChildVoucher],
    done: dict[str, MealRedemption],
) -> list[BatchItemResult]:
    results: list[BatchItemResult | None] = [None] * len(requests)
    fresh: dict[str, tuple[int, dict[str, Any]]] = {}  # idempotency key -> (position, row)
    repeats: list[int] = []  # positions repeating a key seen earlier in this batch
    for position, request in enumerate(requests):
        key = request.idempotency_key
        if key in done or key in fresh:
            repeats.append(position)
            continue
        try:
            row = await validate_meal_request(
                session, school, request, qr_key=qr_key, now=now, parameters=parameters,
                children=children,
            )  # fmt: skip
        except VoucherError as refused:
            results[position] = BatchItemResult(
                key, code=refused.code, message=str(refused), refused=refused
            )
            continue
        fresh[key] = (position, row)
    inserted = await _insert_many_or_nothing(session, [row for _, row in fresh.values()])
    await post_new_transfers(
        session=session, transfers=[meal_payment(school, r) for r in inserted.values()]
    )
    for key, (position, row) in fresh.items():
        if key in inserted:
            done[key] = inserted[key]
            results[position] = BatchItemResult(key, redeemed=Redeemed(inserted[key], False))
        else:
            # Lost to a meal recorded before (or concurrently): say which, or replay it.
            why = await _why_not_inserted(session, row)
            result = await _refusal_or_replay(session, school, requests[position], qr_key, why)
            results[position] = result
            if result.redeemed is not None:
                done[key] = result.redeemed.redemption
    for position in repeats:
        request = requests[position]
        try:
            if request.idempotency_key not in done:
                raise IdempotencyKeyReused("refusal.first_item_refused")
            replay = await _replay(session, school, request, qr_key, done=done)
            assert replay is not None
            results[position] = BatchItemResult(request.idempotency_key, redeemed=replay)
        except VoucherError as refused:
            results[position] = BatchItemResult(
                request.idempotency_key, code=refused.code, message=str(refused), refused=refused
            )
    return [result for result in results if result is not None]


async def _refusal_or_replay(
    session: AsyncSession,
    school: Merchant,
    request: MealRequest,
    qr_key: bytes,
    refused: VoucherError | LedgerError,
) -> BatchItemResult:
    try:
        replay = await _replay(session, school, request, qr_key)
    except VoucherError as reused:
        refused = reused
        replay = None
    if replay is not None:
        return BatchItemResult(request.idempotency_key, redeemed=replay)
    return BatchItemResult(
        request.idempotency_key, code=refused.code, message=str(refused), refused=refused
    )


def served_text(meal_id: int, *, replayed: bool = False) -> str:
    """What a redemption's audit record says it changed."""
    return f"meal {meal_id} served" + (" (replay)" if replayed else "")


def served_entry(caller: Caller, redeemed: Redeemed, iins: dict[int, str]) -> Entry:
    """The audit record of one meal served (or replayed), about the child (`iins`: the IINs
    of the children known, by person id): the same record on every path."""
    meal = redeemed.redemption
    return Entry(
        caller=caller,
        subject_iin=iins.get(meal.person_id),
        family_id=meal.family_id,
        action="write",
        what=served_text(meal.id, replayed=redeemed.replayed),
    )


def meal_payment(school: Merchant, redemption: MealRedemption) -> NewTransfer:
    """The ledger transfer that pays the school for the meal."""
    return NewTransfer(
        transfer_id=redemption.transfer_id,
        debit=wallet_code(redemption.person_id),
        credit=school.account_code,
        amount=redemption.price_tiyn,
        reason=Reason.MEAL_SERVED,
        family_id=redemption.family_id,
        person_id=redemption.person_id,
    )


ChildLoader = Callable[[int, date], Awaitable[ChildVoucher | None]]


async def validate_meal_request(
    session: AsyncSession | None,
    school: Merchant,
    request: MealRequest,
    *,
    qr_key: bytes,
    now: datetime,
    parameters: ParameterSet | None,
    children: dict[int, ChildVoucher],
    load_child: ChildLoader | None = None,
) -> dict[str, Any]:
    """The redemption row the request asks for, or the VoucherError refusing it.

    A child not in `children` (for the request's school year) is read by `load_child`, by
    default from `session`.
    """
    if request.meal_type not in MEAL_TYPES:
        raise InvalidInput("refusal.meal_type", choices=", ".join(MEAL_TYPES))
    claims = None
    if request.qr_token is not None:
        claims = verify_qr(key=qr_key, token=request.qr_token, now=None)
        if claims.merchant_id != str(school.id):
            raise WrongSchool("refusal.qr_other_school")
        check_unexpired(claims, now=now)  # the school first, then the expiry
        child_id = claims.child_person_id
    elif request.child_person_id is not None:
        child_id = request.child_person_id
    else:
        raise InvalidInput("refusal.qr_or_child")
    today = local_day(now)
    if request.served_on > today:
        raise NotASchoolDay("refusal.meal_in_future")
    if claims is not None and request.served_on != local_day(claims.issued_at):
        raise QrNotForThisDay("refusal.qr_other_day", day=local_day(claims.issued_at))
    year = _school_year_or_refuse(request.served_on, parameters)
    if not year.is_school_day(request.served_on):
        raise NotASchoolDay("refusal.not_a_school_day", day=request.served_on)
    if claims is None and request.served_on != today:
        check_claim_window(request.served_on, today=today, parameters=parameters)
    child = children.get(child_id)
    if child is None or child.year_start != year.start:
        if load_child is None:
            assert session is not None, "give a session or load_child"
            child = await _load_child(session, child_id, year.start)
        else:
            child = await load_child(child_id, year.start)
    if child is None:
        raise NotEnrolled("refusal.no_such_pupil")
    if child.school_id != school.external_code:
        raise NotEnrolled("refusal.not_at_this_school")
    if child.voucher_id is None:
        raise NoVoucher("refusal.no_meals_voucher_that_year")
    if claims is not None and claims.voucher_id != child.voucher_id:
        raise QrInvalid("refusal.qr_other_voucher")
    price = meal_price(
        region=school.region,
        meal_type=request.meal_type,
        school_year_start=year.start,
        parameters=parameters,
    )
    return {
        "idempotency_key": request.idempotency_key,
        "voucher_id": child.voucher_id,
        "family_id": child.family_id,
        "person_id": child.person_id,
        "merchant_id": school.id,
        "service_date": request.served_on,
        "meal_type": request.meal_type,
        "price_tiyn": price,
        "method": "qr" if claims is not None else "list",
        "qr_nonce": claims.nonce if claims is not None else None,
        "transfer_id": meal_transfer_id(child.voucher_id, request.served_on, request.meal_type),
        "claimed_on": today,
    }


def check_claim_window(served_on: date, *, today: date, parameters: ParameterSet | None) -> None:
    """CLAIM_WINDOW_CLOSED if a list meal of `served_on` can no longer be claimed `today`."""
    window = claim_window(served_on, parameters=parameters)
    if school_days_after(served_on, through=today, parameters=parameters) > window:
        raise ClaimWindowClosed("refusal.claim_window_closed", day=served_on, window=window)


def _insert_statement(session: AsyncSession) -> Callable[[Any], Any]:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def _insert_or_nothing(session: AsyncSession, row: dict[str, Any]) -> MealRedemption | None:
    """Insert the redemption unless one of its unique keys is taken; the row, or None.

    ON CONFLICT DO NOTHING makes a lost race an answer, not an exception: on PostgreSQL the
    loser waits for the winner's commit on the unique index and then inserts nothing.
    """
    inserted = await _insert_many_or_nothing(session, [row])
    return inserted.get(row["idempotency_key"])


async def _insert_many_or_nothing(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> dict[str, MealRedemption]:
    """Insert the rows, skipping any whose unique keys are taken; the rows inserted, by
    idempotency key.

    One statement of one row's shape, executed for many rows (SQLAlchemy batches them into
    multi-row INSERTs), so its compiled form is cached instead of rebuilt for each batch.
    """
    if not rows:
        return {}
    stamp = utcnow()
    table = MealRedemption.__table__
    statement = _insert_statement(session)(table).on_conflict_do_nothing().returning(*table.c)
    params = [{**row, "created_at": stamp} for row in rows]
    if len(params) == 1:
        result = await session.execute(statement.values(**params[0]))
    else:
        result = await session.execute(statement, params)
    inserted = [MealRedemption(**dict(row._mapping)) for row in result]
    return {row.idempotency_key: row for row in inserted}


async def _why_not_inserted(session: AsyncSession, row: dict[str, Any]) -> VoucherError:
    """The refusal for a redemption whose insert found one of its unique keys taken."""
    by_key = await session.scalar(
        select(MealRedemption.id).where(
            MealRedemption.merchant_id == row["merchant_id"],
            MealRedemption.idempotency_key == row["idempotency_key"],
        )
    )
    by_nonce = None
    if by_key is None and row["qr_nonce"] is not None:
        by_nonce = await session.scalar(
            select(MealRedemption.id).where(MealRedemption.qr_nonce == row["qr_nonce"])
        )
    return refusal_for_taken_keys(
        row, key_taken=by_key is not None, nonce_taken=by_nonce is not None
    )


def refusal_for_taken_keys(
    row: dict[str, Any], *, key_taken: bool, nonce_taken: bool
) -> VoucherError:
    """Which of a redemption's unique keys was taken, as the refusal to give."""
    if key_taken:
        # The caller's replay check reports it (same content) or refuses it (other content).
        return IdempotencyKeyReused("refusal.redemption_key_reused")
    if nonce_taken:
        return QrReplayed("refusal.qr_replayed")
    return AlreadyRedeemed(
        "refusal.already_redeemed", meal=Term(f"meal.{row['meal_type']}"), day=row["service_date"]
    )


async def _replay(
    session: AsyncSession,
    school: Merchant,
    request: MealRequest,
    qr_key: bytes,
    *,
    done: dict[str, MealRedemption] | None = None,
) -> Redeemed | None:
    """The school's first result under this idempotency key, if any; refuses other content."""
    first = (done or {}).get(request.idempotency_key) or await session.scalar(
        select(MealRedemption).where(
            MealRedemption.merchant_id == school.id,
            MealRedemption.idempotency_key == request.idempotency_key,
        )
    )
    return replay_of(first, school, request, qr_key)


def replay_of(
    first: MealRedemption | None, school: Merchant, request: MealRequest, qr_key: bytes
) -> Redeemed | None:
    """`first` (the school's meal under the request's idempotency key) as a replay of `request`;
    None when there is none; IDEMPOTENCY_KEY_REUSED when it was another meal."""
    if first is None:
        return None
    if request.qr_token is not None:
        try:
            claims = verify_qr(key=qr_key, token=request.qr_token, now=None)
        except QrInvalid:
            claims = None
        same_child = claims is not None and claims.nonce == first.qr_nonce
    else:
        same_child = first.method == "list" and first.person_id == request.child_person_id
    same = (
        same_child
        and first.merchant_id == school.id
        and first.meal_type == request.meal_type
        and first.service_date == request.served_on
    )
    if not same:
        raise IdempotencyKeyReused("refusal.redemption_key_reused")
    return Redeemed(first, replayed=True)


async def _load_child(
    session: AsyncSession, person_id: int, year_start: date
) -> ChildVoucher | None:
    row = (
        await session.execute(
            select(Person.id, Person.family_id, Person.school_id, MealVoucher.id)
            .outerjoin(
                MealVoucher,
                (MealVoucher.person_id == Person.id)
                & (MealVoucher.school_year_start == year_start),
            )
            .where(Person.id == person_id)
        )
    ).first()
    return None if row is None else ChildVoucher(*row, year_start=year_start)


async def _preload_children(
    session: AsyncSession, requests: Sequence[MealRequest], qr_key: bytes
) -> dict[int, ChildVoucher]:
    """The batch's children with their vouchers, keyed by person id (one statement).

    The vouchers read are those of the school year of the batch's first item; items of
    another school year fall back to a read of their own.
    """
    ids: set[int] = set()
    for request in requests:
        if request.child_person_id is not None:
            ids.add(request.child_person_id)
        elif request.qr_token is not None:
            try:
                ids.add(verify_qr(key=qr_key, token=request.qr_token, now=None).child_person_id)
            except QrInvalid:
                continue
    year = school_year(requests[0].served_on) if requests else None
    if not ids or year is None:
        return {}
    rows = await session.execute(
        select(Person.id, Person.family_id, Person.school_id, MealVoucher.id)
        .outerjoin(
            MealVoucher,
            (MealVoucher.person_id == Person.id) & (MealVoucher.school_year_start == year.start),
        )
        .where(Person.id.in_(sorted(ids)))
    )
    return {row[0]: ChildVoucher(*row, year_start=year.start) for row in rows}


async def _preload_done(
    session: AsyncSession, school: Merchant, keys: list[str]
) -> dict[str, MealRedemption]:
    if not keys:
        return {}
    rows = await session.scalars(
        select(MealRedemption).where(
            MealRedemption.merchant_id == school.id, MealRedemption.idempotency_key.in_(keys)
        )
    )
    return {row.idempotency_key: row for row in rows}


# --- What parents and canteens see ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MealServed:
    """A meal as a parent sees it."""

    redemption_id: int
    served_on: date
    meal_type: str
    price_tiyn: int
    school_name: str
    method: str


async def child_meals(
    *, session: AsyncSession, parent_iin: str, child_person_id: int
) -> list[MealServed]:
    """Every meal the parent's child was served, newest first."""
    _, child = await own_child(session=session, parent_iin=parent_iin, child_id=child_person_id)
    rows = await session.execute(
        select(MealRedemption, Merchant.name)
        .join(Merchant, Merchant.id == MealRedemption.merchant_id)
        .where(MealRedemption.person_id == child.id)
        .order_by(MealRedemption.service_date.desc(), MealRedemption.meal_type)
    )
    return [
        MealServed(r.id, r.service_date, r.meal_type, r.price_tiyn, name, r.method)
        for r, name in rows
    ]


@dataclass(frozen=True, slots=True)
class SchoolMealServed:
    """A meal on the canteen's list of the day: who, which meal, at what price."""

    redemption: MealRedemption
    first_name: str
    last_name: str


async def meals_served_at(
    *, session: AsyncSession, merchant_id: uuid.UUID | str, on: date
) -> list[SchoolMealServed]:
    """The meals the school served on a day, newest first (the canteen's list of the day)."""
    school = await get_merchant(session=session, merchant_id=merchant_id, category=PURPOSE)
    rows = await session.execute(
        select(MealRedemption, Person.first_name, Person.last_name)
        .join(Person, Person.id == MealRedemption.person_id)
        .where(MealRedemption.merchant_id == school.id, MealRedemption.service_date == on)
        .order_by(MealRedemption.id.desc())
    )
    return [SchoolMealServed(meal, first, last) for meal, first, last in rows]


async def enrolled_children(*, session: AsyncSession, merchant_id: uuid.UUID | str) -> list[Person]:
    """The pupils enrolled at the school (its list, for picking a child without a QR)."""
    school = await get_merchant(session=session, merchant_id=merchant_id, category=PURPOSE)
    rows = await session.scalars(
        select(Person)
        .where(Person.school_id == school.external_code, Person.date_of_death.is_(None))
        .order_by(Person.last_name, Person.first_name, Person.id)
    )
    return list(rows)
