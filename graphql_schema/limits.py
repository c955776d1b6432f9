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
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    TypeNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from app.settings import Settings

PERSONAL_DATA_OVER_GET = "PERSONAL_DATA_OVER_GET"
# `@strawberry.field(metadata=PUBLIC_OVER_GET)` lets a root field be read over GET.
PUBLIC_OVER_GET = {"public_over_get": True}


def limit_rules(settings: Settings) -> type[ValidationRule]:
    """The depth and alias limits, behind the fragment-expansion guard, as one rule."""
    return guard_fragment_expansion(
        max_selections=settings.graphql_max_selections,
        rules=[
            *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
            *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
        ],
    )


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Depth, alias and token limits as schema extension factories."""
    guarded = limit_rules(settings)
    return [
        lambda: MaxTokensLimiter(max_token_count=settings.graphql_max_tokens),
        lambda: AddValidationRules([guarded]),
        GetCarriesNoPersonalData,
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
