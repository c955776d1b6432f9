"""SQL with :named parameters for asyncpg, which takes $1, $2, ... in order; and the type of
a source of transactions on asyncpg connections.

The hot paths (vouchers/meal_hotpath.py) run a few large statements on the driver's
connection. Written with names they stay readable; SQLAlchemy compiles each once to
asyncpg's numbered form (a name used twice gets one number), and `args` lines the values up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

# A way to run a transaction on a driver connection: `async with transactions() as conn:`
# (app/driver_db.py makes them; the hot paths take them).
DriverTransactions = Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A statement in asyncpg's form and the names of its parameters, in order."""

    sql: str
    names: tuple[str, ...]

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The values for $1, $2, ...; a missing name is a KeyError, not a NULL."""
        return [values[name] for name in self.names]


def driver_statement(sql: str) -> DriverStatement:
    """Compile `sql` (:name parameters; cast with CAST(:name AS type)) for asyncpg."""
    # SQLAlchemy's dialect constructors are unannotated.
    compiled = text(sql).compile(dialect=asyncpg_dialect())  # type: ignore[no-untyped-call]
    return DriverStatement(compiled.string, tuple(compiled.positiontup or ()))
