"""The schema: queries and mutations composed from the per-area modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from sqlalchemy import select
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import Info

from app.auth import Role as RoleValue
from app.settings import Settings
from familymap.tables import Person
from graphql_schema.context import Context
from graphql_schema.errors import is_expected
from graphql_schema.mutations import Mutation
from graphql_schema.permissions import require_principal, requires
from graphql_schema.scalars import IIN, SCALAR_MAP
from graphql_schema.types.identity import Viewer
from graphql_schema.types.registry import RegistryPerson
from graphql_schema.types.voucher_queries import VoucherQueries

CACHE_SIZE = 512


@strawberry.type
class Query(VoucherQueries):
    @strawberry.field(description="The caller's identity and roles.", extensions=requires())
    def me(self, info: Info[Context, Any]) -> Viewer:
        return Viewer.from_principal(require_principal(info))

    @strawberry.field(
        description="Look a person up in the family map by IIN (operators only).",
        extensions=requires(RoleValue.OPERATOR),
    )
    async def person(self, info: Info[Context, Any], iin: IIN) -> RegistryPerson | None:
        async with info.context.session_factory() as session:
            row = await session.scalar(select(Person).where(Person.iin == iin))
        return RegistryPerson.from_row(row) if row is not None else None


def build_schema(settings: Settings) -> strawberry.Schema:
    """The schema for this environment: in prod, introspection off, suggestions off,
    unexpected errors masked."""
    # Extensions are given as classes or factories: strawberry makes fresh ones per request.
    # The parser and validation caches live at module level, so they still span requests.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
    ]
    if settings.is_prod:
        extensions += [
            DisableIntrospection,
            lambda: MaskErrors(should_mask_error=lambda error: not is_expected(error)),
        ]
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=settings.is_prod, scalar_map=SCALAR_MAP),
    )
