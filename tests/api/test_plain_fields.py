"""The short path for plain leaf fields (graphql_schema/execution.py): same answers and errors
as graphql-core's own path, without a ResolveInfo per plain field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

import strawberry
from strawberry.extensions import SchemaExtension

from graphql_schema.execution import PlainFieldsExecutionContext


@dataclass(frozen=True)
class Row:
    title: str
    count: int
    day: date
    note: str | None


@strawberry.type
class Item:
    title: str
    count: int
    day: date
    note: str | None
    # Declared non-null, but the row has None: graphql-core must report it, with its path.
    broken: str

    @strawberry.field
    def shout(self) -> str:
        return self.title.upper()


ROWS = [Row("tea", 2, date(2026, 11, 18), None), Row("bread", 1, date(2026, 11, 19), "fresh")]


def item(row: Row, broken: Any = "ok") -> Item:
    return Item(title=row.title, count=row.count, day=row.day, note=row.note, broken=broken)


@strawberry.type
class Query:
    @strawberry.field
    def items(self) -> list[Item]:
        return [item(r) for r in ROWS]

    @strawberry.field
    def broken_item(self) -> Item | None:
        return item(ROWS[0], broken=None)

    @strawberry.field
    def bad_count(self) -> Item | None:
        # An Int field holding a string: the scalar refuses it.
        return Item(title="x", count="not a number", day=ROWS[0].day, note=None, broken="ok")  # type: ignore[arg-type]


class Counting(PlainFieldsExecutionContext):
    infos: ClassVar[list[str]] = []

    def build_resolve_info(self, field_def, field_nodes, parent_type, path):  # type: ignore[no-untyped-def]
        Counting.infos.append(field_nodes[0].name.value)
        return super().build_resolve_info(field_def, field_nodes, parent_type, path)


def run(query: str, context_class: type = Counting, **schema: Any) -> Any:
    Counting.infos = []
    built = strawberry.Schema(query=Query, execution_context_class=context_class, **schema)
    return built.execute_sync(query)


def test_plain_leaf_fields_are_answered_without_a_resolve_info():
    query = "{ items { title n: count day note shout } }"
    fast = run(query)
    plain = strawberry.Schema(query=Query).execute_sync(query)  # graphql-core's path only

    assert fast.errors is None
    assert (
        fast.data
        == plain.data
        == {
            "items": [
                {"title": "tea", "n": 2, "day": "2026-11-18", "note": None, "shout": "TEA"},
                {"title": "bread", "n": 1, "day": "2026-11-19", "note": "fresh", "shout": "BREAD"},
            ]
        }
    )
    # Only the resolvers (items, shout) and the nulls got a ResolveInfo.
    assert sorted(Counting.infos) == ["items", "note", "shout", "shout"]


def test_a_null_in_a_non_null_field_and_a_refused_value_are_reported_as_before():
    query = "{ brokenItem { title broken } badCount { title count } }"
    fast = run(query)
    plain = strawberry.Schema(query=Query).execute_sync(query)

    assert fast.data == plain.data == {"brokenItem": None, "badCount": None}
    assert [(e.message, e.path) for e in fast.errors] == [(e.message, e.path) for e in plain.errors]
    assert [e.path for e in fast.errors] == [["brokenItem", "broken"], ["badCount", "count"]]


def test_a_middleware_sees_every_field():
    seen: list[str] = []

    class Watch(SchemaExtension):
        def resolve(self, _next, root, info, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(info.field_name)
            return _next(root, info, *args, **kwargs)

    result = run("{ items { title count } }", extensions=[Watch])

    assert result.errors is None
    assert seen == ["items", "title", "count", "title", "count"]
