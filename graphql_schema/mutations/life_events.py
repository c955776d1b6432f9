"""Life events pushed by source systems: permission, one service call, the result mapped."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from familymap.access import Role
from familymap.clock import astana_today, utc_now
from familymap.events import EventRefused, record_life_event
from graphql_schema.audit import audit
from graphql_schema.context import Context
from graphql_schema.errors import refusal_text
from graphql_schema.permissions import require_principal, requires
from graphql_schema.types.life_events import (
    LifeEventInput,
    LifeEventRecorded,
    LifeEventRefused,
    RecordLifeEventResult,
)
from vouchers.merchants import is_registered_school
from wallet.offers import offer_new_entitlements


@strawberry.type
class LifeEventMutations:
    @strawberry.mutation(
        description=(
            "Record a life event a state information system observed, and re-evaluate the "
            "family at once. Idempotent by `eventId`. Source systems only."
        ),
        extensions=requires(Role.SOURCE_SYSTEM),
    )
    async def record_life_event(
        self, info: Info[Context, Any], input: LifeEventInput
    ) -> RecordLifeEventResult:
        source = require_principal(info).subject
        # The domain raises before its transaction commits, so a refusal writes nothing.
        try:
            async with info.context.session_factory() as session, session.begin():
                result = await record_life_event(
                    session=session,
                    event_id=input.event_id,
                    kind=input.kind.value,
                    source=source,
                    occurred_on=input.occurred_on,
                    subject_iin=input.subject_iin,
                    data=input.data(),
                    # The registry's dates are Kazakhstan's: an event of today in Astana is not
                    # in the future, though the UTC date may still be yesterday's.
                    today=astana_today(),
                    known_school=lambda code: is_registered_school(
                        session=session, external_code=code
                    ),
                )
                # New entitlements are offered (and notices sent) in the same transaction as
                # the event that made them: nothing is decided without its offer following.
                await offer_new_entitlements(
                    session=session,
                    run_id=result.run_id,
                    now=utc_now(),
                    offer_days=info.context.settings.offer_days,
                )
                await audit(
                    info,
                    session=session,
                    role=Role.SOURCE_SYSTEM,
                    subject_iin=input.subject_iin,
                    family_id=result.family_id,
                    action="write",
                    what=f"life event {input.kind.name}" + (" (replay)" if result.replayed else ""),
                )
        except EventRefused as refused:
            # Said in the caller's language (Accept-Language), like every other refusal.
            message = refusal_text(refused, info.context.language)
            return LifeEventRefused(code=refused.code, message=message)
        return LifeEventRecorded.from_result(result)
