"""Rate limits at the GraphQL edge: every mutation, and named buckets for single fields.

- `MutationRateLimit` (a schema extension) charges the caller's mutation bucket before a
  mutation operation executes, so a refused request runs nothing. Its cost is what the
  executor will run: one unit per root field after fragments are spread and `@skip` and
  `@include` applied (aliases count apart), and a field in `WEIGHTED_BY_LIST` weighs as many
  units as its list argument has items (a canteen's batch of 1,000 meals is 1,000 meals).
- `rate_limited(<bucket>)` is a field extension for one field's own bucket, charged once
  per call: `extensions=[*requires(Role.CITIZEN), rate_limited(QR_TOKENS)]`, so the
  permission is checked first and only a permitted call is counted.

The buckets are named here, where they are charged; the app gives each its limit (a
setting, in `app.rate_limit.limits_from_settings`) and puts the limiter in the context. A
new limit is a bucket name here, a setting and its entry there, and `rate_limited(<bucket>)`
on its field; a test fails for a bucket no field uses.

A refusal is RATE_LIMITED with `extensions.retryAfter` (seconds) and a `Retry-After` header.
Callers are counted by their token's subject; anonymous callers cannot reach a mutation
(every mutation needs a role), so they are not counted here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import lru_cache
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import FieldNode, ListValueNode, VariableNode, get_operation_ast, parse
from graphql import OperationType as GraphQLOperationType
from graphql.execution import Executor
from graphql.execution.collect_fields import collect_fields
from graphql.execution.values import get_argument_values
from strawberry.extensions import FieldExtension, SchemaExtension
from strawberry.types import Info
from strawberry.types.graphql import OperationType

from familymap.access import MERCHANT_ROLES
from graphql_schema.context import Context
from graphql_schema.errors import RateLimited

# The buckets, by name.
MUTATIONS = "mutation"
# A canteen or a pharmacy serves many people through one staff token: at the lunch peak one
# school serves hundreds of meals in minutes, which a person's limit would refuse.
MERCHANT_MUTATIONS = "merchant_mutation"
QR_TOKENS = "qr_token"
# A pharmacy's staff token looking prescriptions up: a person at the counter is a few a
# minute; hundreds are someone guessing ids.
PRESCRIPTION_LOOKUPS = "prescription_lookup"
# Root mutation fields that do one unit of work per item of a list argument: the field's
# name -> that argument's name.
WEIGHTED_BY_LIST: dict[str, str] = {"redeemMealsBatch": "items"}


async def charge(context: Context, *, bucket: str, cost: int = 1) -> None:
    """Charge the caller's `bucket`; raise RateLimited (and set Retry-After) when empty."""
    principal = context.principal
    if context.rate_limiter is None or principal is None or cost <= 0:
        return
    decision = await context.rate_limiter.hit(bucket=bucket, subject=principal.subject, cost=cost)
    if not decision.allowed:
        context.response.headers["retry-after"] = str(decision.retry_after_seconds)
        raise RateLimited(bucket=bucket, retry_after=decision.retry_after_seconds)


# A root field's weight in a plan: one unit, a list literal's length, or the length of the
# list a variable carries (by the variable's name).
Weight = int | str


@lru_cache(maxsize=512)
def _plan(query: str, operation_name: str | None) -> tuple[Weight, ...] | None:
    """The weights of a mutation's root fields, when the document alone decides them: plain
    fields with distinct response keys, no fragment and no directive (which only the executor's
    field collection resolves). None: ask the executor (`_collected_cost`).

    Decided once per document text (a canteen's client sends the same few all day), which
    has parsed and validated before any mutation is charged; keyed by the text, whose hash
    Python keeps, not by the parsed document, whose hash walks the whole tree."""
    operation = get_operation_ast(parse(query), operation_name)
    if operation is None or operation.operation is not GraphQLOperationType.MUTATION:
        return None
    weights: list[Weight] = []
    keys: set[str] = set()
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        key = (selection.alias or selection.name).value
        if key in keys:
            return None  # the executor merges the two into one field
        keys.add(key)
        argument = WEIGHTED_BY_LIST.get(selection.name.value)
        if argument is None:
            weights.append(1)
            continue
        value = next((a.value for a in selection.arguments if a.name.value == argument), None)
        if isinstance(value, ListValueNode):
            weights.append(len(value.values))
        elif isinstance(value, VariableNode):
            weights.append(value.name.value)
        else:
            return None
    return tuple(weights)


def mutation_cost(execution_context: Any) -> int:
    """The units a mutation operation costs: its root fields as the executor collects them,
    each weighing one unit or, if weighted, the length of its list argument."""
    query = execution_context.query
    plan = _plan(query, execution_context.operation_name) if query else None
    variables = execution_context.variables or {}
    if plan is not None and all(
        isinstance(w, int) or isinstance(variables.get(w), list) for w in plan
    ):
        # An empty batch is still a request.
        return sum(max(1, w if isinstance(w, int) else len(variables[w])) for w in plan)
    return _collected_cost(execution_context)


def _collected_cost(execution_context: Any) -> int:
    # graphql-core's own preparation and field collection, so that what is counted is what
    # runs: fragments spread, @skip/@include applied, variables coerced.
    schema = execution_context.schema._schema
    executor = Executor.build(
        schema,
        execution_context.graphql_document,
        raw_variable_values=execution_context.variables,
        operation_name=execution_context.operation_name,
    )
    root = schema.mutation_type
    if isinstance(executor, list) or root is None:
        return 0  # the request is refused before execution: nothing runs
    collected = collect_fields(
        schema, executor.fragments, executor.variable_values, root, executor.operation
    )
    cost = 0
    for field_details in collected.grouped_field_set.values():
        first = field_details[0]
        argument = WEIGHTED_BY_LIST.get(first.node.name.value)
        if argument is None:
            cost += 1
            continue
        arguments = get_argument_values(
            root.fields[first.node.name.value],
            first.node,
            executor.variable_values,
            first.fragment_variable_values,
        )
        # An empty batch is still a request.
        cost += max(1, len(arguments.get(argument) or ()))
    return cost


class MutationRateLimit(SchemaExtension):
    """Charges the caller's mutation bucket before a mutation operation executes.

    Its hook is async (the limiter may call Redis), so the schema runs under async execution
    only, as the ASGI view does; `execute_sync` would refuse it.
    """

    async def on_execute(self) -> AsyncIterator[None]:  # type: ignore[override]
        execution_context = self.execution_context
        context = execution_context.context
        if execution_context.operation_type is OperationType.MUTATION and isinstance(
            context, Context
        ):
            await self._charge(context)
        yield

    async def _charge(self, context: Context) -> None:
        principal = context.principal
        if principal is None or context.rate_limiter is None:
            return  # nobody to count (see the module's docstring)
        # A canteen's or pharmacy's staff token serves many people: its own bucket.
        bucket = MERCHANT_MUTATIONS if principal.has_any(MERCHANT_ROLES) else MUTATIONS
        try:
            await charge(context, bucket=bucket, cost=mutation_cost(self.execution_context))
        except RateLimited as refused:
            # Setting the result skips execution: no resolver runs.
            self.execution_context.result = GraphQLExecutionResult(data=None, errors=[refused])


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
