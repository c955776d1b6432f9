"""What a document may ask for before anything runs: depth, aliases, tokens, and GET's reach.

Every limit is a validation rule or a parse option (strawberry's own QueryDepthLimiter,
MaxAliasesLimiter and MaxTokensLimiter), so a refused document is refused before any resolver
runs. The rule classes are built once per schema: the validation cache keys on the rules, and
fresh classes per request would make every request a cache miss.

Queries over GET carry no personal data. A GET request's URL lands in proxy and server logs
and in browser history, and its response may be cached on the way: so over GET a document
may select only root fields marked `public` (see `PUBLIC_OVER_GET`), and may declare no
variable of the IIN type. Unmarked fields are refused (deny by default), so a new field that
returns personal data is safe over GET without anyone remembering to mark it. Today no field
is public: everything the API returns is about a person. POST has no such restriction.

Every `ID` and `String` value is checked too (graphql_schema/scalars.py: `check_id`,
`check_text`): literals by the `CheckedValues` rule, variables by the `CheckedVariables`
extension before execution. An id past int64 or text with NUL is the client's mistake, refused
with BAD_USER_INPUT, not a database error deep in a resolver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    InlineFragmentNode,
    IntValueNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    TypeNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    get_operation_ast,
    type_from_ast,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from graphql_schema.errors import BAD_USER_INPUT, InvalidValue
from graphql_schema.scalars import check_id, check_text
from graphql_schema.settings import SchemaSettings

PERSONAL_DATA_OVER_GET = "PERSONAL_DATA_OVER_GET"
# `@strawberry.field(metadata=PUBLIC_OVER_GET)` lets a root field be read over GET.
PUBLIC_OVER_GET = {"public_over_get": True}


def limit_rules(settings: SchemaSettings) -> type[ValidationRule]:
    """The depth and alias limits, behind the fragment-expansion guard, as one rule."""
    return guard_fragment_expansion(
        max_selections=settings.graphql_max_selections,
        rules=[
            *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        ],
    )


def limit_extensions(settings: SchemaSettings) -> list[Callable[[], SchemaExtension]]:
    """Depth, alias and token limits as schema extension factories."""
    guarded = limit_rules(settings)
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: AddValidationRules([guarded, CheckedValues]),
        GetCarriesNoPersonalData,
        CheckedVariables,
    ]


def expanded_selections(document: DocumentNode) -> int:
    """How many field selections the document's operations make with fragments spread out.

    Counted once per fragment (memoised), so the count costs time linear in the document
    even when it is exponential in its result.
    """
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    sizes: dict[str, int] = {}

    def size(selection_set: SelectionSetNode | None) -> int:
        total = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                total += 1 + size(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                total += size(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in sizes and name in fragments:
                    sizes[name] = 0  # a cycle counts nothing; NoFragmentCycles refuses it
                    sizes[name] = size(fragments[name].selection_set)
                total += sizes.get(name, 0)
        return total

    return sum(
        size(d.selection_set)
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode)
    )


def guard_fragment_expansion(
    *, max_selections: int, rules: list[type[ValidationRule]]
) -> type[ValidationRule]:
    """One rule: refuse a document that expands past `max_selections`, else run `rules`.

    strawberry's depth and alias limiters walk every fragment spread afresh, so ten lines of
    fragments that each spread the previous one twice cost them 2^n steps (a 1 kB document
    held a worker for over a minute). The memoised count runs first and keeps them away
    from such documents.
    """

    class FragmentExpansionGuard(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            count = expanded_selections(context.document)
            if count > max_selections:
                context.report_error(
                    GraphQLError(
                        f"The document selects {count} fields with its fragments spread out; "
                        f"at most {max_selections} are allowed."
                    )
                )
                return
            for rule in rules:
                rule(context)  # these limiters do all their work (and reporting) when built

    return FragmentExpansionGuard


class GetCarriesNoPersonalData(SchemaExtension):
    """Adds the `NoPersonalDataOverGet` rule to requests that came by GET."""

    def on_operation(self) -> Iterator[None]:
        request = getattr(self.execution_context.context, "request", None)
        if request is not None and request.method == "GET":
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoPersonalDataOverGet,
            )
        yield


def _named_type(type_node: TypeNode) -> str:
    while not isinstance(type_node, NamedTypeNode):
        type_node = type_node.type  # type: ignore[attr-defined]
    return type_node.name.value


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> Iterator[FieldNode]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            # A fragment is walked once: cycles (refused anyway by NoFragmentCycles) and
            # repeated spreads cannot make this walk long.
            if name not in seen and name in fragments:
                seen.add(name)
                yield from _root_fields(fragments[name].selection_set, fragments, seen)


def _is_public(context: ValidationContext, field_name: str) -> bool:
    if field_name == "__typename":
        return True
    query_type = context.schema.query_type
    field = query_type.fields.get(field_name) if query_type else None
    definition: Any = (field.extensions or {}).get("strawberry-definition") if field else None
    metadata = getattr(definition, "metadata", None) or {}
    return bool(metadata.get("public_over_get"))


class NoPersonalDataOverGet(ValidationRule):
    """Over GET: only root fields marked public, and no IIN-typed variable."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        for variable in node.variable_definitions or ():
            if _named_type(variable.type) == "IIN":
                self._refuse(variable, "an IIN may not travel in a URL")
        fragments = {
            d.name.value: d
            for d in self.context.document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        for field in _root_fields(node.selection_set, fragments, set()):
            if not _is_public(self.context, field.name.value):
                self._refuse(field, f"the field '{field.name.value}' returns personal data")

    def _refuse(self, node: Any, why: str) -> None:
        self.report_error(
            GraphQLError(
                f"Not over GET: {why}; send it by POST.",
                nodes=[node],
                extensions={"code": PERSONAL_DATA_OVER_GET},
            )
        )


# --- ID and String values ---------------------------------------------------------------------

_CHECKS = {"ID": check_id, "String": check_text}


class CheckedValues(ValidationRule):
    """Literal ID and String values in the document pass `check_id` / `check_text`."""

    def enter_string_value(self, node: StringValueNode, *_args: Any) -> None:
        self._check(node, node.value)

    def enter_int_value(self, node: IntValueNode, *_args: Any) -> None:
        self._check(node, node.value)

    def _check(self, node: Any, value: str) -> None:
        input_type = self.context.get_input_type()
        check = _CHECKS.get(get_named_type(input_type).name) if input_type else None
        if check is None:
            return
        try:
            check(value)
        except InvalidValue as refused:
            self.report_error(
                GraphQLError(str(refused), nodes=[node], extensions={"code": BAD_USER_INPUT})
            )


def refused_variable(
    schema: Any, document: DocumentNode, operation_name: str | None, variables: Any
) -> str | None:
    """Why a variable's ID or String value is refused, or None if all pass."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or not isinstance(variables, dict):
        return None  # graphql-core reports both
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        declared = type_from_ast(schema, definition.type)
        if name in variables and declared is not None:
            why = _refused_value(declared, variables[name])  # type: ignore[arg-type]
            if why is not None:
                return f"Variable '${name}': {why}."
    return None


def _refused_value(input_type: GraphQLInputType, value: Any) -> str | None:
    """Walk a raw JSON value along its declared type; shapes that do not fit are left to
    graphql-core's coercion, which refuses them in its own words."""
    if isinstance(input_type, GraphQLNonNull):
        input_type = input_type.of_type
    if value is None:
        return None
    if isinstance(input_type, GraphQLList):
        for item in value if isinstance(value, list) else [value]:
            if (why := _refused_value(input_type.of_type, item)) is not None:
                return why
        return None
    if isinstance(input_type, GraphQLInputObjectType):
        if not isinstance(value, dict):
            return None
        for field_name, field in input_type.fields.items():
            if field_name in value and (why := _refused_value(field.type, value[field_name])):
                return why
        return None
    if isinstance(input_type, GraphQLScalarType) and (check := _CHECKS.get(input_type.name)):
        if input_type.name == "String" and not isinstance(value, str):
            return None
        try:
            check(value)
        except InvalidValue as refused:
            return str(refused)
    return None


class CheckedVariables(SchemaExtension):
    """Refuses the operation before it runs if a variable's ID or String value is refused."""

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.result is None:
            why = refused_variable(
                context.schema._schema,
                context.graphql_document,
                context.operation_name,
                context.variables or {},
            )
            if why is not None:
                error = GraphQLError(why, extensions={"code": BAD_USER_INPUT})
                context.result = GraphQLExecutionResult(data=None, errors=[error])
        yield
