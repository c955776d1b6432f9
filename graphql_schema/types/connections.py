"""Relay connections for lists that grow: a page at a time, with opaque cursors."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry import relay
from strawberry.types import Info

from graphql_schema.errors import ApiError
from graphql_schema.scalars import is_list_cursor


@strawberry.type(
    name="Connection", description="A page of a list that is null for callers it does not concern."
)
class NullableConnection(relay.ListConnection[relay.NodeType]):
    """strawberry's ListConnection, answering null when the resolver returns None.

    The wallet's lists are null for a caller who is not a citizen, like its other fields,
    rather than an empty page that would read as "a citizen with nothing".
    """

    @classmethod
    def resolve_connection(cls, nodes: Any, *, info: Info, **kwargs: Any) -> Any:  # type: ignore[override]
        # strawberry refuses a page too large with a bare ValueError, which would reach the
        # client as INTERNAL_SERVER_ERROR; it is the client's input, so say so.
        limit = kwargs.get("max_results") or info.schema.config.relay_max_results
        for name in ("first", "last"):
            size = kwargs.get(name)
            if size is not None and not 0 <= size <= limit:
                raise ApiError("error.out_of_range", values={"name": name, "limit": limit})
        # strawberry reads a garbage cursor with a bare ValueError or TypeError (a 500).
        for name in ("before", "after"):
            cursor = kwargs.get(name)
            if cursor is not None and not is_list_cursor(cursor):
                raise ApiError("error.not_a_cursor", values={"name": name})
        if nodes is None:
            return None
        return super().resolve_connection(nodes, info=info, **kwargs)
