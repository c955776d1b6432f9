"""The schema: queries and mutations composed from the per-area modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import select
from strawberry.extensions import (
    DisableIntrospection,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, Info

from familymap.access import Role as RoleValue
from familymap.i18n import catalogues
from familymap.tables import Person
from graphql_schema.audit import AuditQueries, audit
from graphql_schema.context import Context, RoutedReads
from graphql_schema.errors import is_expected, translate_errors
from graphql_schema.execution import PlainFieldsExecutionContext
from graphql_schema.extensions import MaskUnexpected
from graphql_schema.limits import limit_extensions
from graphql_schema.mutations import Mutation
from graphql_schema.permissions import require_principal, requires
from graphql_schema.queries.bank import BankQueries
from graphql_schema.queries.fallback import FallbackQueries
from graphql_schema.queries.node import NodeQueries
from graphql_schema.queries.offers import OfferQueries
from graphql_schema.rate_limits import MutationRateLimit
from graphql_schema.scalars import IIN, SCALAR_MAP
from graphql_schema.settings import SchemaSettings
from graphql_schema.types.identity import Viewer
from graphql_schema.types.registry import RegistryPerson
from graphql_schema.types.voucher_queries import VoucherQueries
from graphql_schema.types.wallet import Language

CACHE_SIZE = 512


@strawberry.type
class Query(NodeQueries, OfferQueries, BankQueries, AuditQueries, VoucherQueries, FallbackQueries):
    @strawberry.field(
        description="The caller's identity and roles; for a citizen, their wallet. Texts are "
        "in `language`, else the request's Accept-Language (kk, ru, en; default ru).",
        extensions=requires(),
    )
    def me(self, info: Info[Context, Any], language: Language | None = None) -> Viewer:
        chosen = language.value if language is not None else info.context.language
        return Viewer.from_principal(require_principal(info), language=chosen)

    @strawberry.field(
        description="Look a person up in the family map by IIN (operators only).",
        extensions=requires(RoleValue.OPERATOR),
    )
    async def person(self, info: Info[Context, Any], iin: IIN) -> RegistryPerson | None:
        async with info.context.session_factory() as session, session.begin():
            row = await session.scalar(select(Person).where(Person.iin == iin))
            # A lookup is recorded even when it finds no one: probing is worth seeing too.
            await audit(
                info,
                session=session,
                role=RoleValue.OPERATOR,
                subject_iin=iin,
                family_id=row.family_id if row is not None else None,
                action="read",
                what="registry person" if row is not None else "registry person (no match)",
            )
        return RegistryPerson.from_row(row) if row is not None else None


class Schema(strawberry.Schema):
    """strawberry's schema, logging only the errors we did not mean to send.

    strawberry logs every error with its traceback; refusals (UNAUTHENTICATED, FORBIDDEN,
    INVALID_IIN, ...) are the API working as intended, and their tracebacks would bury the
    unexpected ones.
    """

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Every path an error takes passes here, before MaskErrors: say refusals in the
        # request's language.
        context = execution_context.context if execution_context is not None else None
        translate_errors(errors, language=getattr(context, "language", None))
        super().process_errors([e for e in errors if not is_expected(e)], execution_context)


def build_schema(settings: SchemaSettings) -> strawberry.Schema:
    """The schema for this environment: depth, alias and token limits; in prod, introspection
    off, suggestions off, unexpected errors masked."""
    # The catalogue is read now, not by the first request that is refused.
    catalogues()
    # Extensions are given as classes or factories: strawberry makes fresh ones per request.
    # The parser and validation caches live at module level, so they still span requests.
    extensions: list[Callable[[], SchemaExtension]] = [
        lambda: ParserCache(maxsize=CACHE_SIZE),
        lambda: ValidationCache(maxsize=CACHE_SIZE),
        *limit_extensions(settings),
        MutationRateLimit,
        RoutedReads,
    ]
    if settings.is_prod:
        extensions += [
            DisableIntrospection,
            lambda: MaskUnexpected(should_mask_error=lambda error: not is_expected(error)),
        ]
    return Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        execution_context_class=PlainFieldsExecutionContext,
        config=StrawberryConfig(disable_field_suggestions=settings.is_prod, scalar_map=SCALAR_MAP),
    )
