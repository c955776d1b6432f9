"""graphql-core's execution with a short path for plain fields.

A screen of 50 entitlements with their reasons is ~1,000 fields, nearly all of them a plain
attribute of a domain dataclass (a title, an amount, a verdict). For each, graphql-core builds
a ResolveInfo, looks at the arguments, calls strawberry's attribute resolver (which ignores
the info), checks for an awaitable and completes the value through the type dispatch: about
as much work per field as the rest of the request put together. For a field that is only an
attribute read (strawberry's basic field: no resolver, no extension, no permission) of a leaf
type, without arguments, the answer is the serialized attribute, and this context returns it
directly. The same goes one level up: a basic field holding an object, or a list of objects,
whose selected fields are all such leaves (an entitlement's reasons, a family's members) is
answered as one dict per object, without collecting and executing its fields one by one.

Anything else takes graphql-core's own path, unchanged: fields with resolvers, objects with
any other field selected (or a fragment, a directive, `__typename`, an alias used twice),
types that check their objects (`is_type_of`), and every case where the short path would
have to report something (a null, a value the scalar refuses, an error), which is then
reproduced there with its path and message: the short path answers all or nothing.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    Undefined,
)
from graphql.type.definition import is_leaf_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_LEAF = "_plain_leaf_type"
_OBJECTS = "_plain_object_type"
_UNKNOWN = object()
# (response key, the field's basic resolver, its leaf type) for each selected field.
LeafPlan = list[tuple[str, Any, GraphQLLeafType]]


class _NotPlain(Exception):
    """The short path met something graphql-core must report or decide: it steps aside."""


def _plain_leaf(field: GraphQLField) -> GraphQLLeafType | None:
    """The leaf type a basic strawberry field returns, or None for any other field."""
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field.args:
        return None
    output = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    return output if is_leaf_type(output) else None  # type: ignore[return-value]


def _plain_objects(field: GraphQLField) -> tuple[bool, GraphQLObjectType] | None:
    """(holds a list?, the object type) of a basic strawberry field holding objects of a type
    that does not check them (no `is_type_of`), or None for any other field."""
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field.args:
        return None
    output: Any = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    is_list = isinstance(output, GraphQLList)
    if is_list:
        output = output.of_type
        output = output.of_type if isinstance(output, GraphQLNonNull) else output
    if isinstance(output, GraphQLObjectType) and output.is_type_of is None:
        return is_list, output
    return None


def _cached(field: GraphQLField, key: str, decide: Any) -> Any:
    """Decided once per field of the schema, and kept on the field itself."""
    found = field.__dict__.get(key, _UNKNOWN)
    if found is _UNKNOWN:
        found = field.__dict__[key] = decide(field)
    return found


def _leaf_plan(object_type: GraphQLObjectType, node: FieldNode) -> LeafPlan | None:
    """How to answer the selection under `node` leaf by leaf, or None if any of it is not a
    plain leaf field selected once, without arguments or directives."""
    if node.selection_set is None:
        return None
    plan: LeafPlan = []
    keys: set[str] = set()
    for selection in node.selection_set.selections:
        if (
            not isinstance(selection, FieldNode)
            or selection.directives
            or selection.arguments
            or selection.selection_set
        ):
            return None
        key = selection.alias.value if selection.alias else selection.name.value
        field = object_type.fields.get(selection.name.value)  # `__typename` is not among them
        leaf = None if field is None or key in keys else _cached(field, _LEAF, _plain_leaf)
        if leaf is None:
            return None
        keys.add(key)
        plan.append((key, field.resolve, leaf))  # type: ignore[union-attr]
    return plan


def _plain_answer(plan: LeafPlan, item: Any) -> dict[str, Any]:
    """One object's selected leaves, serialized; _NotPlain for a null or a refused value."""
    if item is None:
        raise _NotPlain
    answer = {}
    for key, resolve, leaf in plan:
        # strawberry's basic resolver reads the attribute and ignores the info.
        value = resolve(item, None)
        serialized = None if value is None else leaf.serialize(value)
        if serialized is None or serialized is Undefined:
            raise _NotPlain
        answer[key] = serialized
    return answer


class PlainFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """strawberry's execution context, reading plain leaf fields without a ResolveInfo."""

    def execute_field(  # type: ignore[override]
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        # strawberry passes a middleware manager on every request, empty unless an
        # extension resolves fields; a middleware must see every field, so then no short path.
        middleware = self.middleware_manager
        if not node.arguments and (middleware is None or not middleware.middlewares):
            field = self.schema.get_field(parent_type, node.name.value)
            if field is not None:
                leaf = _cached(field, _LEAF, _plain_leaf)
                if leaf is not None:
                    try:
                        # strawberry's basic resolver reads the attribute and ignores the info.
                        value = field.resolve(source, None)  # type: ignore[misc]
                        if value is not None:
                            serialized = leaf.serialize(value)
                            if serialized is not None and serialized is not Undefined:
                                return serialized
                    except Exception:  # noqa: S110 - graphql-core's path below reports it
                        pass
                objects = _cached(field, _OBJECTS, _plain_objects)
                # Several nodes for one key would merge their selections: graphql-core's job.
                if objects is not None and len(field_details_list) == 1:
                    is_list, object_type = objects
                    plan = _leaf_plan(object_type, node)
                    if plan is not None:
                        try:
                            value = field.resolve(source, None)  # type: ignore[misc]
                            if not is_list:
                                return _plain_answer(plan, value)
                            if isinstance(value, list | tuple):
                                return [_plain_answer(plan, item) for item in value]
                        except Exception:  # noqa: S110 - graphql-core's path below reports it
                            pass
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
