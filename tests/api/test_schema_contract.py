"""The committed schema.graphql is the mobile teams' contract: it matches the code, and it
changes only compatibly.

Policy (docs/api.md): a field, argument, enum value or type is removed only after a release
in which it was marked `@deprecated(reason: "... remove after YYYY-MM-DD")`. Anything else
that breaks a client (a removed field, a type changed, a required argument added) fails here
against the previous committed version of the file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from graphql import build_schema, find_breaking_changes
from graphql.type import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType

from app.schema_export import schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"
DATED = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def deprecated_with_a_date(old_sdl: str) -> set[str]:
    """`Type.member` names that `old_sdl` deprecates with a dated reason."""
    old = build_schema(old_sdl)
    dated: set[str] = set()
    for name, type_ in old.type_map.items():
        if isinstance(type_, GraphQLObjectType | GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                if DATED.search(getattr(field, "deprecation_reason", None) or ""):
                    dated.add(f"{name}.{field_name}")
        if isinstance(type_, GraphQLEnumType):
            for value_name, value in type_.values.items():
                if DATED.search(value.deprecation_reason or ""):
                    dated.add(f"{name}.{value_name}")
    return dated


def breaking_changes(old_sdl: str, new_sdl: str) -> list[str]:
    """What `new_sdl` breaks for clients of `old_sdl`, less removals deprecated first."""
    allowed = deprecated_with_a_date(old_sdl)
    changes = find_breaking_changes(build_schema(old_sdl), build_schema(new_sdl))
    return [
        change.description
        for change in changes
        if removed_member(change.description) not in allowed
    ]


def removed_member(description: str) -> str | None:
    """`Type.member` of a removal as graphql-core describes it, else None."""
    removal = re.fullmatch(r"(?:Field|Enum value) (\w+\.\w+) was removed\.", description)
    return removal.group(1) if removal else None


def previous_committed_schema() -> str | None:
    """The newest committed schema.graphql that differs from the file in the work tree."""
    current = SCHEMA_FILE.read_text()
    log = subprocess.run(  # noqa: S603 - git, fixed arguments
        ["git", "log", "--format=%H", "--", SCHEMA_FILE.name],  # noqa: S607
        cwd=SCHEMA_FILE.parent, capture_output=True, text=True, check=False,
    )  # fmt: skip
    for commit in log.stdout.split():
        shown = subprocess.run(  # noqa: S603 - git, fixed arguments
            ["git", "show", f"{commit}:{SCHEMA_FILE.name}"],  # noqa: S607
            cwd=SCHEMA_FILE.parent, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if shown.returncode == 0 and shown.stdout != current:
            return shown.stdout
    return None


def test_the_committed_schema_is_the_codes_schema():
    # Given the schema the code builds, printed as `make schema` prints it
    printed = schema.as_str() + "\n"
    # Then the committed file is the same, byte for byte
    assert SCHEMA_FILE.read_text() == printed, "schema.graphql is stale: run `make schema`"


def test_no_argument_default_leaks_a_python_object():
    assert "object at 0x" not in SCHEMA_FILE.read_text()


def test_the_schema_changed_only_compatibly_since_its_last_committed_version():
    previous = previous_committed_schema()
    if previous is None:
        return  # the file's first version: nothing to be compatible with
    assert breaking_changes(previous, SCHEMA_FILE.read_text()) == []


OLD = """
type Query {
  kept: Int
  gone: Int
  retired: Int @deprecated(reason: "Use kept; remove after 2027-01-31.")
}
"""


def test_a_removed_field_breaks_the_contract_unless_deprecated_with_a_date_first():
    # Given a schema whose next version removes one plain and one deprecated field
    new = "type Query { kept: Int }"
    # Then only the field that was never deprecated is reported
    assert breaking_changes(OLD, new) == ["Field Query.gone was removed."]


def test_an_enum_value_removed_breaks_the_contract_unless_deprecated_with_a_date_first():
    old = (
        'enum Code { A B C @deprecated(reason: "remove after 2027-01-31") } type Query { c: Code }'
    )
    new = "enum Code { A } type Query { c: Code }"
    assert breaking_changes(old, new) == ["Enum value Code.B was removed."]


def test_a_required_argument_added_breaks_the_contract():
    old = "type Query { offers: Int }"
    new = "type Query { offers(year: Int!): Int }"
    assert breaking_changes(old, new) != []
