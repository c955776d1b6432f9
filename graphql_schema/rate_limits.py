"""Rate limits at the GraphQL edge: every mutation, and named buckets for single fields.

- `MutationRateLimit` (a schema extension) charges the caller's `mutation` bucket one unit
  per root field of a mutation operation, before execution: a refused request runs nothing.
- `rate_limited("qr_token")` is a field extension for one field's own bucket (QR-token
  issuance): `extensions=[*requires(Role.CITIZEN), rate_limited("qr_token")]`, so the
  permission is checked first and only a permitted call is counted.

A refusal is RATE_LIMITED with `extensions.retryAfter` (seconds) and a `Retry-After` header.
Callers are counted by their token's subject; anonymous callers cannot reach a mutation
(every mutation needs a role), so they are not counted here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import OperationDefinitionNode
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.types import Info
from strawberry.types.graphql import OperationType

from app.auth import Role
from graphql_schema.context import Context
from graphql_schema.errors import RateLimited

MUTATION_BUCKET = "mutation"
MERCHANT_MUTATION_BUCKET = "merchant_mutation"
MERCHANT_ROLES = frozenset({Role.SCHOOL, Role.PHARMACY})


async def charge(context: Context, *, bucket: str, cost: int = 1) -> None:
    """Charge the caller's `bucket`; raise RateLimited (and set Retry-After) when empty."""
    principal = context.principal
    if context.rate_limiter is None or principal is None or cost <= 0:
        return
    decision = await context.rate_limiter.hit(bucket=bucket, subject=principal.subject, cost=cost)
    if not decision.allowed:
        context.response.headers["retry-after"] = str(decision.retry_after_seconds)
        raise RateLimited(bucket=bucket, retry_after=decision.retry_after_seconds)


def _root_field_count(execution_context: Any) -> int:
    document = execution_context.graphql_document
    name = execution_context.operation_name
    for definition in document.definitions if document else ():
        if isinstance(definition, OperationDefinitionNode) and (
            name is None or (definition.name and definition.name.value == name)
        ):
            return len(definition.selection_set.selections)
    return 0


class MutationRateLimit(SchemaExtension):
    """Charges the caller's `mutation` bucket before a mutation operation executes.

    Its hook is async (the limiter may call Redis), so the schema runs under async execution
    only, as the ASGI view does; `execute_sync` would refuse it.
    """

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        execution_context = self.execution_context
        context = execution_context.context
        if execution_context.operation_type is OperationType.MUTATION and isinstance(
            context, Context
        ):
            principal = context.principal
            # A canteen's or pharmacy's staff token serves many people: its own bucket.
            merchant = principal is not None and principal.has_any(MERCHANT_ROLES)
            bucket = MERCHANT_MUTATION_BUCKET if merchant else MUTATION_BUCKET
            try:
                await charge(context, bucket=bucket, cost=_root_field_count(execution_context))
            except RateLimited as refused:
                # Setting the result skips execution: no resolver runs.
                execution_context.result = GraphQLExecutionResult(data=None, errors=[refused])
        yield


class RateLimitedField(FieldExtension):
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        raise TypeError("rate_limited fields must be async")

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        await charge(info.context, bucket=self.bucket)
        return await next_(source, info, **kwargs)


def rate_limited(bucket: str) -> FieldExtension:
    """A field extension charging the caller's `bucket` once per call."""
    return RateLimitedField(bucket)
