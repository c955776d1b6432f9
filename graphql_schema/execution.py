"""graphql-core's execution with a short path for plain leaf fields.

A screen of 50 entitlements with their reasons is ~1,000 fields, nearly all of them a plain
attribute of a domain dataclass (a title, an amount, a verdict). For each, graphql-core builds
a ResolveInfo, looks at the arguments, calls strawberry's attribute resolver (which ignores
the info), checks for an awaitable and completes the value through the type dispatch: about
as much work per field as the rest of the request put together. For a field that is only an
attribute read (strawberry's basic field: no resolver, no extension, no permission) of a leaf
type, without arguments, the answer is the serialized attribute, and this context returns it
directly.

Anything else takes graphql-core's own path, unchanged: fields with resolvers, objects and
lists, and every case where the short path would have to report something (a null, a value
the scalar refuses, an error), which is then reproduced there with its path and message.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLField, GraphQLLeafType, GraphQLNonNull, GraphQLObjectType, Undefined
from graphql.type.definition import is_leaf_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_LEAF = "_plain_leaf_type"
_UNKNOWN = object()


def _plain_leaf(field: GraphQLField) -> GraphQLLeafType | None:
    """The leaf type a basic strawberry field returns, or None for any other field."""
    resolve = field.resolve
    if resolve is None or not getattr(resolve, "_is_default", False) or field.args:
        return None
    output = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    return output if is_leaf_type(output) else None  # type: ignore[return-value]


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
                # Decided once per field of the schema, and kept on the field itself.
                leaf = field.__dict__.get(_LEAF, _UNKNOWN)
                if leaf is _UNKNOWN:
                    leaf = field.__dict__[_LEAF] = _plain_leaf(field)
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
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
