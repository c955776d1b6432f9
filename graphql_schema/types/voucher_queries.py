"""Voucher queries, composed into `Query`: what parents, schools, pharmacies and operators see.

Every field returning personal data checks the object belongs to the caller: a parent's own
children, a patient's own dispensings, a merchant's own pupils, acts and dispensings. A
refusal here is a GraphQL error with code FORBIDDEN (queries return data, not unions).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import strawberry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay
from strawberry.types import Info

from familymap.access import Role
from familymap.clock import astana_today
from familymap.tables import Person
from graphql_schema.audit import audit, audit_reads
from graphql_schema.context import Context
from graphql_schema.errors import NOT_FOUND, ApiError, Forbidden
from graphql_schema.permissions import require_principal, requires
from graphql_schema.rate_limits import PRESCRIPTION_LOOKUPS, rate_limited
from graphql_schema.types.connections import NullableConnection
from graphql_schema.types.vouchers import (
    ActView,
    ChildMeal,
    DispensingSeen,
    FamilyPupil,
    MealVoucherView,
    PrescriptionForPharmacy,
    SchoolMeal,
    SchoolPupil,
)
from vouchers import acts, meals, medicines, pupils
from vouchers.errors import NotYourChild, VoucherError
from vouchers.fallback_report import PRESCRIPTION_MISS


@strawberry.type
class VoucherQueries:
    @strawberry.field(
        description="The pupils of the caller's family and their school-meals vouchers.",
        extensions=requires(Role.CITIZEN),
    )
    async def my_pupils(self, info: Info[Context, Any]) -> list[FamilyPupil]:
        iin = require_principal(info).subject
        async with info.context.session_factory() as session:
            found = await pupils.family_pupils(
                session=session, parent_iin=iin, today=astana_today()
            )
        return [
            FamilyPupil(
                child_id=strawberry.ID(str(pupil.child.id)),
                first_name=pupil.child.first_name,
                school_grade=pupil.child.school_grade,
                school_code=pupil.child.school_id,
                voucher=None if pupil.voucher is None else MealVoucherView.from_row(pupil.voucher),
            )
            for pupil in found
        ]

    @relay.connection(
        NullableConnection[ChildMeal],
        description="Every meal the caller's child was served, newest first: date, school, "
        "meal type, price.",
        extensions=requires(Role.CITIZEN),
    )
    async def child_meals(
        self, info: Info[Context, Any], child_id: strawberry.ID
    ) -> list[ChildMeal]:
        iin = require_principal(info).subject
        try:
            child = int(str(child_id))
        except ValueError:
            raise Forbidden("refusal.not_your_child") from None
        async with info.context.read_session_factory() as session:
            try:
                seen = await meals.child_meals(
                    session=session, parent_iin=iin, child_person_id=child
                )
            except NotYourChild as refused:
                raise Forbidden(refused.message_id, values=refused.values) from None
        return [ChildMeal.from_view(view) for view in seen]

    @strawberry.field(
        description="Medicines dispensed to the caller: what, where and when.",
        extensions=requires(Role.CITIZEN),
    )
    async def my_dispensings(self, info: Info[Context, Any]) -> list[DispensingSeen]:
        iin = require_principal(info).subject
        async with info.context.read_session_factory() as session:
            views = await medicines.dispensings_of_person(session=session, iin=iin)
        return [DispensingSeen.from_view(view) for view in views]

    @strawberry.field(
        description="What the calling pharmacy dispensed.", extensions=requires(Role.PHARMACY)
    )
    async def pharmacy_dispensings(self, info: Info[Context, Any]) -> list[DispensingSeen]:
        merchant = uuid.UUID(require_principal(info).subject)
        async with info.context.read_session_factory() as session:
            try:
                views = await medicines.dispensings_of_pharmacy(
                    session=session, merchant_id=merchant
                )
            except VoucherError as refused:
                raise Forbidden(refused.message_id, values=refused.values) from None
            iins = await _iins_of(session, {view.person_id for view in views})
        # A record per patient, not per family: who had medicines is theirs to see.
        await audit_reads(
            info,
            role=Role.PHARMACY,
            about={(view.family_id, iins.get(view.person_id)) for view in views},
            what="pharmacy's dispensings listed",
        )
        return [DispensingSeen.from_view(view) for view in views]

    @strawberry.field(
        description="The calling school's enrolled pupils, to pick a child without a QR code.",
        extensions=requires(Role.SCHOOL),
    )
    async def school_pupils(self, info: Info[Context, Any]) -> list[SchoolPupil]:
        merchant = uuid.UUID(require_principal(info).subject)
        async with info.context.session_factory() as session:
            try:
                rows = await meals.enrolled_children(session=session, merchant_id=merchant)
            except VoucherError as refused:
                raise Forbidden(refused.message_id, values=refused.values) from None
        # A record per pupil: only those who see the child fully see who read about them.
        await audit_reads(
            info,
            role=Role.SCHOOL,
            about={(row.family_id, row.iin) for row in rows},
            what="school's pupil list read",
        )
        return [SchoolPupil.from_row(row) for row in rows]

    @relay.connection(
        NullableConnection[SchoolMeal],
        description="The meals the calling school served on a day (today in Kazakhstan by default), "
        "newest first.",
        extensions=requires(Role.SCHOOL),
    )
    async def school_meals(
        self, info: Info[Context, Any], on: date | None = None
    ) -> list[SchoolMeal]:
        merchant = uuid.UUID(require_principal(info).subject)
        async with info.context.read_session_factory() as session:
            try:
                views = await meals.meals_served_at(
                    session=session, merchant_id=merchant, on=on or astana_today()
                )
            except VoucherError as refused:
                raise Forbidden(refused.message_id, values=refused.values) from None
            iins = await _iins_of(session, {view.redemption.person_id for view in views})
        await audit_reads(
            info,
            role=Role.SCHOOL,
            about={(v.redemption.family_id, iins.get(v.redemption.person_id)) for v in views},
            what="school's meals of the day read",
        )
        return [SchoolMeal.from_view(view) for view in views]

    @strawberry.field(
        description="Find an e-prescription by its id before dispensing (the patient shows "
        "it). Pharmacies only, a limited number a minute per staff token; NOT_FOUND if there "
        "is none (and the miss is recorded).",
        extensions=[*requires(Role.PHARMACY), rate_limited(PRESCRIPTION_LOOKUPS)],
    )
    async def prescription(
        self, info: Info[Context, Any], external_id: str
    ) -> PrescriptionForPharmacy:
        merchant = uuid.UUID(require_principal(info).subject)
        today = astana_today()
        async with info.context.session_factory() as session, session.begin():
            try:
                found, patient = await medicines.prescription_for_pharmacy(
                    session=session, merchant_id=merchant, external_id=external_id, today=today
                )
            except VoucherError as refused:
                missed = refused
            else:
                # The patient's data read by a pharmacy: recorded in the same transaction.
                await audit(
                    info,
                    session=session,
                    role=Role.PHARMACY,
                    subject_iin=patient.iin,
                    family_id=patient.family_id,
                    action="read",
                    what=f"prescription looked up: {external_id}",
                )
                return PrescriptionForPharmacy.from_rows(found, patient, today)
            # A miss is recorded too: guessing prescription ids is worth seeing.
            await audit(
                info,
                session=session,
                role=Role.PHARMACY,
                subject_iin=None,
                family_id=None,
                action="read",
                what=f"{PRESCRIPTION_MISS}: {external_id[:64]}",
            )
        raise ApiError(missed.message_id, values=missed.values, code=NOT_FOUND)

    @strawberry.field(
        description="An act: its merchant's own, or any for an operator.",
        extensions=requires(Role.SCHOOL, Role.PHARMACY, Role.OPERATOR),
    )
    async def merchant_act(self, info: Info[Context, Any], act_id: strawberry.ID) -> ActView:
        principal = require_principal(info)
        async with info.context.read_session_factory() as session:
            try:
                act = await acts.get_act(session=session, act_id=int(str(act_id)))
            except (VoucherError, ValueError):
                raise ApiError("refusal.no_such_act", code=NOT_FOUND) from None
        if not principal.has_any({Role.OPERATOR}) and str(act.merchant_id) != principal.subject:
            raise Forbidden("refusal.act_of_another_merchant")
        return ActView.from_row(act)


async def _iins_of(session: AsyncSession, person_ids: set[int]) -> dict[int, str]:
    """The IINs of these people, for audit records about each of them."""
    if not person_ids:
        return {}
    rows = await session.execute(select(Person.id, Person.iin).where(Person.id.in_(person_ids)))
    return dict(rows.all())
