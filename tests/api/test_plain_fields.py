"""The short path for plain leaf fields (graphql_schema/execution.py): same answers and errors
as graphql-core's own path, without a ResolveInfo per plain field."""

from __future__ import annotations

import json
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


@strawberry.type
class Shelf:
    # A plain field holding the domain's dataclasses, as Entitlement.reasons does.
    rows: list[Item]
    first: Item | None
    maybe: list[Item | None] | None


@strawberry.interface
class Named:
    title: str


@strawberry.type
class Tagged(Named):
    count: int


@strawberry.type
class Board:
    # Tagged implements an interface, so strawberry gives it an is_type_of check.
    tags: list[Tagged]


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
    def shelf(self) -> Shelf:
        return Shelf(rows=ROWS, first=ROWS[1], maybe=[ROWS[0], None])  # type: ignore[arg-type, list-item]

    @strawberry.field
    def broken_shelf(self) -> Shelf | None:
        return Shelf(rows=[item(ROWS[0]), item(ROWS[1], broken=None)], first=None, maybe=None)  # type: ignore[list-item]

    @strawberry.field
    def refused_shelf(self) -> Shelf | None:
        odd = Row("x", "not a number", ROWS[0].day, None)  # type: ignore[arg-type]
        return Shelf(rows=[ROWS[0], odd], first=odd, maybe=None)  # type: ignore[list-item, arg-type]

    @strawberry.field
    def board(self) -> Board:
        return Board(tags=[Tagged(title="a", count=1)])

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


def both_paths(query: str) -> tuple[Any, Any]:
    fast = run(query)
    plain = strawberry.Schema(query=Query).execute_sync(query)
    errors = [(e.message, e.path) for e in fast.errors or ()]
    assert errors == [(e.message, e.path) for e in plain.errors or ()]
    assert fast.data == plain.data
    # The same answer, key order included (the JSON the client reads).
    assert json.dumps(fast.data) == json.dumps(plain.data)
    return fast, errors


def test_objects_whose_selected_fields_are_plain_leaves_are_answered_whole():
    fast, errors = both_paths("{ shelf { rows { title n: count day note } first { title } } }")

    assert errors == []
    assert fast.data == {
        "shelf": {
            "rows": [
                {"title": "tea", "n": 2, "day": "2026-11-18", "note": None},
                {"title": "bread", "n": 1, "day": "2026-11-19", "note": "fresh"},
            ],
            "first": {"title": "bread"},
        }
    }
    # `rows` holds a null (tea's note): graphql-core answers it; `first` is all plain leaves.
    assert sorted(Counting.infos) == ["note", "rows", "shelf"]


def test_an_object_with_a_resolver_typename_fragment_or_repeated_key_takes_graphql_cores_path():
    for query in (
        "{ shelf { first { title shout } } }",
        "{ shelf { first { __typename title } } }",
        "{ shelf { first { ...F } } } fragment F on Item { title }",
        "{ shelf { first { t: title t: title } } }",
        "{ shelf { first { title @include(if: true) } } }",
        "{ shelf { first { title } first { count } } }",
        "{ board { tags { title count } } }",
    ):
        _, errors = both_paths(query)
        assert errors == [], query
        assert "first" in Counting.infos or "tags" in Counting.infos, query


def test_a_null_item_a_null_in_a_non_null_field_and_a_refused_value_are_reported_as_before():
    _, errors = both_paths("{ shelf { maybe { title } } }")
    assert errors == []

    _, errors = both_paths("{ brokenShelf { rows { title broken } } }")
    assert errors == [
        (
            "Cannot return null for non-nullable field Item.broken.",
            ["brokenShelf", "rows", 1, "broken"],
        )
    ]

    _, errors = both_paths("{ refusedShelf { first { count } } }")
    assert [path for _, path in errors] == [["refusedShelf", "first", "count"]]
    _, errors = both_paths("{ refusedShelf { rows { title count } } }")
    assert [path for _, path in errors] == [["refusedShelf", "rows", 1, "count"]]
