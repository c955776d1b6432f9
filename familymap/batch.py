"""Eligibility runs: the whole registry (batch) or one family, and the diff they leave.

A run reads the registry in ranges of family ids, evaluates each range with the vectorised
engine, compares the eligible set with the current entitlements of the same families, and
writes the difference: `entitlement_changes` (new, changed, ended) for the offer flow to
consume, and the entitlements table brought up to date. The diff is computed once, in polars,
for both databases; only the bulk reads and writes differ (COPY on PostgreSQL).

A run is one transaction: it is either all written or not at all. On PostgreSQL a batch run
holds an exclusive advisory lock and a one-family run a shared one, so an event's
re-evaluation never interleaves with a batch that would overwrite it with older facts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import operator
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import bindparam, delete, insert, text, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import BigInteger

from familymap import pgcopy, registry_snapshot
from familymap.driver_sql import driver_in_transaction
from familymap.engine.evaluate import evaluate_population, explain_population_family
from familymap.engine.results import FamilyEvaluation, PopulationResult
from familymap.parameters import ParameterSet, default_parameters
from familymap.registry_snapshot import ChangeLog, RangeFiles, SnapshotFiles
from familymap.rules import RULES
from familymap.store import (
    ENTITLEMENT_KEY,
    FAMILY_FIELDS,
    PERSON_FIELDS,
    FamilySelection,
    RegistryColumns,
    RegistrySlice,
    family_id_bounds,
    read_entitlements,
    read_fields,
    read_registry_columns,
    read_registry_slice,
    registry_slice,
)
from familymap.tables import (
    Decision,
    EligibilityRun,
    Entitlement,
    EntitlementChange,
    Family,
    Person,
)

RANGE_FAMILIES = 250_000
_RUN_LOCK_KEY = 0x5F0C1A1  # advisory lock id shared by every eligibility run

Progress = Callable[[str, int, int], None]  # (unit, done, total): units are ranges or groups


@dataclass(slots=True)
class RunSummary:
    """What a run did, and how long each phase took."""

    run_id: int
    families: int = 0
    persons: int = 0
    eligible: int = 0
    new: int = 0
    changed: int = 0
    ended: int = 0
    # read: time spent waiting for reads (they overlap the writes on PostgreSQL), evaluate,
    # write (diff and database writes), and wall: the whole run, start to finish.
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("read", "evaluate", "write", "wall"), 0.0)
    )
    # Families whose facts were read from the database (the others came from the kept files).
    families_read: int = 0
    registry_snapshot: str | None = None  # the files this run kept, recorded with the run


def rule_versions() -> dict[str, str]:
    """The version of every rule, as recorded on each run."""
    return {rule.code: rule.version for rule in RULES}


async def run_batch(
    connection: AsyncConnection,
    *,
    on: date,
    parameters: ParameterSet | None = None,
    range_families: int = RANGE_FAMILIES,
    progress: Progress | None = None,
    rebuild_indexes: bool = True,
    snapshot_directory: Path | None = None,
) -> RunSummary:
    """Evaluate every family in the registry on `on` and write entitlements and their diff.

    With `rebuild_indexes`, a run that finds no entitlements at all (the first) loads them
    without indexes and builds the indexes once at its end (see `_empty_tables`). With a
    `snapshot_directory` (PostgreSQL), the run keeps the registry it read there and reads
    again only the families that changed since the run that left the files
    (familymap/registry_snapshot.py).
    """
    await _lock(connection, shared=False)
    bounds = await family_id_bounds(connection)
    selections = []
    if bounds is not None:
        low, high = bounds
        # Ranges aligned on the ids (1, 1 + R, ...): the same ranges run after run, so their
        # kept files still fit when the registry grows or its first family goes.
        start = low - (low - 1) % range_families
        selections = [
            FamilySelection.range(first, first + range_families - 1)
            for first in range(start, high + 1, range_families)
        ]
    return await _run(
        connection,
        "batch",
        selections,
        on=on,
        parameters=parameters,
        progress=progress,
        bulk=rebuild_indexes,
        keeping=_Keeping(snapshot_directory, range_families),
    )


async def run_families(
    connection: AsyncConnection,
    *,
    family_ids: Iterable[int],
    on: date,
    parameters: ParameterSet | None = None,
    chunk: int = 5_000,
    progress: Progress | None = None,
) -> RunSummary:
    """Evaluate only the given families (those an import changed) and write their diff."""
    ids = sorted(set(family_ids))
    await _lock(connection, shared=False)
    selections = [FamilySelection.of(*ids[i : i + chunk]) for i in range(0, len(ids), chunk)]
    return await _run(
        connection, "families", selections, on=on, parameters=parameters, progress=progress
    )


@dataclass(frozen=True, slots=True)
class _Keeping:
    """What a batch run keeps for the next: files in `directory` (None: none)."""

    directory: Path | None
    range_families: int


@dataclass(slots=True)
class _Kept:
    """A batch run's change log (PostgreSQL), and the files it reads and writes if any."""

    log: ChangeLog
    files: SnapshotFiles | None

    def changed_in(self, selection: FamilySelection) -> np.ndarray:
        ids, first, last = self.log.family_ids, selection.first, selection.last
        assert first is not None and last is not None  # a batch selects ranges
        return ids[int(np.searchsorted(ids, first)) : int(np.searchsorted(ids, last, "right"))]


async def _start_keeping(
    connection: AsyncConnection,
    reader: AsyncConnection,
    keeping: _Keeping | None,
    *,
    loading: tuple[str, ...],
) -> _Kept | None:
    """Mark the batch's own writes, open the kept files, and read the log (reader's snapshot).

    The files are of no use to a first run (no entitlements: everything is read anyway)."""
    if keeping is None or connection.dialect.name != "postgresql":
        return None  # SQLite: no change log; every run reads everything
    await registry_snapshot.batch_writes_entitlements(connection, writing=True)
    files = None
    if keeping.directory is not None:
        database = await connection.scalar(text("SELECT current_database()"))
        files = SnapshotFiles.open(
            keeping.directory / str(database),
            recorded=None if loading else await registry_snapshot.recorded_token(connection),
            range_families=keeping.range_families,
        )
    log = await registry_snapshot.read_change_log(reader, families=bool(files and files.previous))
    if files is not None and log.everything:
        files.previous.clear()
    return _Kept(log, files)


async def _finish_keeping(
    connection: AsyncConnection, kept: _Kept | None, summary: RunSummary
) -> None:
    """Consume the log the run's reads saw; name the kept files in the run's record."""
    if kept is None:
        return
    await registry_snapshot.consume_change_log(connection, kept.log)
    if kept.files is not None:
        summary.registry_snapshot = await asyncio.to_thread(kept.files.commit)
    await registry_snapshot.batch_writes_entitlements(connection, writing=False)


async def _run(
    connection: AsyncConnection,
    scope: str,
    selections: list[FamilySelection],
    *,
    on: date,
    parameters: ParameterSet | None,
    progress: Progress | None,
    bulk: bool = False,
    keeping: _Keeping | None = None,
) -> RunSummary:
    """Evaluate the selections in order; the next ones are read while one is written.

    On PostgreSQL the reads go through other connections that share this transaction's
    snapshot (pg_export_snapshot): two readers, each reading a range ahead, so the server reads
    on both cores while this process evaluates and writes (one reader in a first run, whose
    cost is its writes). The snapshot was taken under the
    run's lock, before this run wrote anything, so it sees exactly what this transaction would
    (see `_snapshot_readers` for when it can't).
    """
    parameters = parameters or default_parameters()
    started = time.perf_counter()
    # With no entitlements at all there is nothing to read back or compare with, and the
    # writes are the run's cost: one reader keeps up, a second would only take CPU from them.
    loading = await _empty_tables(connection) if bulk else ()
    # The readers first: their snapshot must be taken before this run writes anything.
    async with _snapshot_readers(connection, count=1 if loading else _READERS) as readers:
        kept = await _start_keeping(connection, readers[0], keeping, loading=loading)
        summary = RunSummary(
            run_id=await _start_run(connection, scope=scope, on=on, parameters=parameters)
        )
        await _drop_indexes(connection, loading)
        overlap = readers[0] is not connection  # one connection runs one statement at a time
        pending: deque[asyncio.Future[Any]] = deque()

        def read_ahead(index: int) -> None:
            reader = readers[index % len(readers)]
            pending.append(asyncio.ensure_future(_read(reader, selections[index], loading, kept)))

        try:
            for index, selection in enumerate(selections):
                waited = time.perf_counter()
                if overlap:
                    while len(pending) < len(readers) and index + len(pending) < len(selections):
                        read_ahead(index + len(pending))
                    read = await pending.popleft()
                else:
                    read = await _read(connection, selection, loading, kept)
                summary.seconds["read"] += time.perf_counter() - waited
                await _evaluate_and_write(connection, summary, read, on=on, parameters=parameters)
                if kept is not None and kept.files is not None:
                    await _keep(kept.files, read)
                if progress:
                    progress("selections", index + 1, len(selections))
        finally:
            for future in pending:  # a write failed: don't leave the reads running
                future.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await future
        if loading:
            started_indexes = time.perf_counter()
            await _build_indexes(connection, loading)
            summary.seconds["write"] += time.perf_counter() - started_indexes
        await _finish_keeping(connection, kept, summary)
    summary.seconds["wall"] = time.perf_counter() - started
    await _finish_run(connection, summary)
    return summary


@dataclass(slots=True)
class _RangeRead:
    """One selection's registry, and what to compare its decisions with.

    Either `current` (the selection's entitlements, read) or, from kept files, `kept_rows`
    (the eligible rows the last run left) with `changed` (the families logged since, whose
    kept rows cannot be trusted)."""

    selection: FamilySelection
    columns: RegistryColumns
    current: pl.DataFrame | None
    kept_rows: pl.DataFrame | None = None
    changed: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    previous: RangeFiles | None = None  # the kept files it was patched from
    new: pl.DataFrame | None = None  # set once evaluated: the eligible rows
    rows_unchanged: bool = False  # set once written: kept_rows are still the range's rows


# Beyond this many changed families a range is read whole (a long id list costs more).
_PATCH_LIMIT = 20_000


async def _read(
    reader: AsyncConnection,
    selection: FamilySelection,
    loading: tuple[str, ...] = (),
    kept: _Kept | None = None,
) -> _RangeRead:
    previous = None
    if kept is not None and kept.files is not None and selection.first is not None:
        previous = kept.files.previous.get(selection.first)
    if kept is not None and previous is not None:
        changed = kept.changed_in(selection)
        if len(changed) <= _PATCH_LIMIT:
            read = await _read_patched(reader, selection, kept.files, previous, changed)
            if read is not None:
                return read
    columns = await read_registry_columns(reader, families=selection)
    if loading:  # the tables are known empty, and locked by the writer: don't read them
        return _RangeRead(selection, columns, _no_entitlements())
    return _RangeRead(selection, columns, await read_entitlements(reader, families=selection))


async def _read_patched(
    reader: AsyncConnection,
    selection: FamilySelection,
    files: SnapshotFiles | None,
    previous: RangeFiles,
    changed: np.ndarray,
) -> _RangeRead | None:
    """The kept columns with the changed families read again; None if a file is damaged."""
    assert files is not None
    try:
        persons, families, kept_rows = await asyncio.to_thread(
            lambda: (
                files.read_columns(previous.persons),
                files.read_columns(previous.families),
                files.read_entitlements(previous.entitlements),
            )
        )
    except Exception as error:
        if registry_snapshot.is_damaged(error):
            return None  # read the range whole
        raise
    if len(changed):
        again = FamilySelection.of(*changed.tolist())
        fresh_persons = await read_fields(
            reader, PERSON_FIELDS, again.where(Person.family_id), ["family_id", "person_id"]
        )
        fresh_families = await read_fields(
            reader, FAMILY_FIELDS, again.where(Family.id), ["family_id"]
        )
        persons = _patched(persons, fresh_persons, changed)
        families = _patched(families, fresh_families, changed)
    return _RangeRead(
        selection, (persons, families), None, kept_rows=kept_rows, changed=changed,
        previous=previous,
    )  # fmt: skip


def _patched(
    kept: dict[str, np.ndarray], fresh: dict[str, np.ndarray], changed: np.ndarray
) -> dict[str, np.ndarray]:
    """The kept rows of the families that did not change, and the changed ones as read.

    Each side is ordered (persons by family and id) and a family's rows all come from one
    side: a stable sort on the family id alone orders the whole (where a sort on every key
    would cost more)."""
    stays = ~np.isin(kept["family_id"], changed)
    family = np.concatenate([kept["family_id"][stays], fresh["family_id"]])
    order = np.argsort(family, kind="stable")
    return {name: np.concatenate([kept[name][stays], fresh[name]])[order] for name in kept}


async def _keep(files: SnapshotFiles, read: _RangeRead) -> None:
    """Keep the range's columns and eligible rows (files not rewritten when unchanged)."""
    assert read.selection.first is not None and read.new is not None
    previous = read.previous
    if previous is not None and len(read.changed) == 0:
        persons, families = previous.persons, previous.families
    else:
        persons, families = await asyncio.gather(
            asyncio.to_thread(files.write_columns, read.columns[0]),
            asyncio.to_thread(files.write_columns, read.columns[1]),
        )
    if previous is not None and read.rows_unchanged:
        rows = previous.entitlements
    else:
        rows = await asyncio.to_thread(files.write_entitlements, read.new)
    files.keep(read.selection.first, RangeFiles(persons, families, rows))


def _no_entitlements() -> pl.DataFrame:
    """No current entitlements, in the shape `read_entitlements` returns."""
    return _empty_entitlements().with_columns(pl.lit(None, pl.Int64).alias("id"))


_READERS = 2

# Each table's indexes as the migrations make them: dropped for a bulk load, built after it.
_INDEXES = {
    "entitlements": (
        ("pk_entitlements", "ALTER TABLE entitlements ADD CONSTRAINT pk_entitlements PRIMARY KEY (id)"),
        ("uq_entitlements_family_id_programme_beneficiary_key",
         "ALTER TABLE entitlements ADD CONSTRAINT uq_entitlements_family_id_programme_beneficiary_key"
         " UNIQUE (family_id, programme, beneficiary_key)"),
    ),
    "entitlement_changes": (
        ("pk_entitlement_changes",
         "ALTER TABLE entitlement_changes ADD CONSTRAINT pk_entitlement_changes PRIMARY KEY (id)"),
        ("ix_entitlement_changes_run_id",
         "CREATE INDEX ix_entitlement_changes_run_id ON entitlement_changes (run_id)"),
    ),
}  # fmt: skip


async def _empty_tables(connection: AsyncConnection) -> tuple[str, ...]:
    """When entitlements is empty (the first run), the tables to load without indexes.

    Inserting two million rows into indexed tables costs twice what inserting them and
    building the indexes afterwards does. entitlement_changes loses its indexes too when it
    is empty as well. The indexes (and so the unique key, checked once over all the rows) are
    built again before the run ends, in its transaction: if anything fails, the rollback
    brings the old ones back. Dropping them locks the tables until the run commits; they are
    empty, and the run's readers never read them. PostgreSQL only: SQLite has no bulk path.
    """
    if connection.dialect.name != "postgresql":
        return ()
    tables = []
    for table in _INDEXES:
        empty = not await connection.scalar(text(f"SELECT EXISTS (SELECT FROM {table})"))  # noqa: S608 - fixed names
        if not empty:
            break  # entitlement_changes alone is never bulk-loaded: entitlements comes first
        tables.append(table)
    return tuple(tables)


async def _drop_indexes(connection: AsyncConnection, tables: tuple[str, ...]) -> None:
    for table in tables:
        for name, _ in _INDEXES[table]:
            if name.startswith("ix_"):
                await connection.execute(text(f"DROP INDEX {name}"))
            else:
                await connection.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))


async def _build_indexes(connection: AsyncConnection, tables: tuple[str, ...]) -> None:
    # A larger sort memory for this transaction only: each index is one sort of all its rows.
    await connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
    for table in tables:
        for _, statement in _INDEXES[table]:
            await connection.execute(text(statement))


@asynccontextmanager
async def _snapshot_readers(
    connection: AsyncConnection, *, count: int
) -> AsyncIterator[list[AsyncConnection]]:
    """Read-only connections on this transaction's snapshot, when they can see the same rows.

    Only on PostgreSQL, and only while this transaction has written nothing (another
    connection never sees uncommitted rows) and is not inside a savepoint (a snapshot cannot be
    exported from one). Otherwise the run reads on its own connection, one range at a time.
    """
    if connection.dialect.name != "postgresql" or connection.in_nested_transaction():
        yield [connection]
        return
    if await connection.scalar(text("SELECT pg_current_xact_id_if_assigned()")) is not None:
        yield [connection]
        return
    snapshot = (await connection.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
    async with contextlib.AsyncExitStack() as stack:
        readers = [
            await stack.enter_async_context(_snapshot_reader(connection, snapshot))
            for _ in range(count)
        ]
        yield readers


@asynccontextmanager
async def _snapshot_reader(
    connection: AsyncConnection, snapshot: str
) -> AsyncIterator[AsyncConnection]:
    reader = await connection.engine.connect()
    try:
        repeatable = await reader.execution_options(isolation_level="REPEATABLE READ")
        await repeatable.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))
        await repeatable.execute(text("SET TRANSACTION READ ONLY"))
        yield repeatable
    finally:
        await reader.rollback()
        await reader.close()


async def _evaluate_and_write(
    connection: AsyncConnection,
    summary: RunSummary,
    read: _RangeRead,
    *,
    on: date,
    parameters: ParameterSet,
) -> None:
    result = None
    registry = registry_slice(read.columns)
    if read.current is not None:
        summary.families_read += 0 if registry is None else registry.population.n_families
    else:
        summary.families_read += len(read.changed)
    if registry is not None:
        started = time.perf_counter()
        result = evaluate_population(population=registry.population, on=on, parameters=parameters)
        summary.seconds["evaluate"] += time.perf_counter() - started
        summary.families += registry.population.n_families
        summary.persons += registry.population.n_persons
    started = time.perf_counter()
    new = (
        _empty_entitlements()
        if result is None or registry is None
        else entitlement_frame(result, registry)
    )
    read.new = new
    if read.current is not None:
        await _apply_diff(connection, summary, old=read.current, new=new)
    else:
        assert read.kept_rows is not None
        read.rows_unchanged = await _apply_kept_diff(
            connection, summary, kept=read.kept_rows, changed=read.changed, new=new
        )
    summary.seconds["write"] += time.perf_counter() - started


async def _apply_kept_diff(
    connection: AsyncConnection,
    summary: RunSummary,
    *,
    kept: pl.DataFrame,
    changed: np.ndarray,
    new: pl.DataFrame,
) -> bool:
    """The diff against the kept rows: entitlements are read only of the families whose new
    rows differ from the kept ones, or that were logged (written by anyone but a batch run).
    The others' current rows are the kept ones. Returns whether the kept rows are the new."""
    # The same facts give the same rows in the same order: equal as they are, most often.
    if len(changed) == 0 and (kept.equals(new) or _same_rows(kept, new)):
        summary.eligible += new.height
        return True
    suspects = np.union1d(changed, _differing_families(kept, new))
    if len(suspects) == 0:
        summary.eligible += new.height
        return False  # the same rows in another order: keep them as written now
    theirs = new.filter(pl.col("family_id").is_in(suspects))
    summary.eligible += new.height - theirs.height
    current = await _entitlements_of(connection, suspects)
    await _apply_diff(connection, summary, old=current, new=theirs)
    return False


def _differing_families(kept: pl.DataFrame, new: pl.DataFrame) -> np.ndarray:
    """Families with a row in one frame and not the same in the other.

    Families with as many rows on both sides, sorted by the (unique) key, line up row for
    row: compared column by column, a quarter of what joins on every column cost."""
    side = np.concatenate([np.ones(kept.height, np.int64), -np.ones(new.height, np.int64)])
    counts = (
        pl.concat([kept.select("family_id"), new.select("family_id")])
        .with_columns(side=side)
        .group_by("family_id")
        .agg(pl.col("side").sum())
    )
    uneven = counts.filter(pl.col("side") != 0)["family_id"]
    left, right = (
        frame.select(_COMPARED)
        .filter(~pl.col("family_id").is_in(uneven.implode()))
        .sort(ENTITLEMENT_KEY)
        for frame in (kept, new)
    )
    differs = functools.reduce(
        operator.or_, (left[name].ne_missing(right[name]) for name in _COMPARED)
    )
    return np.union1d(uneven.to_numpy(), left.filter(differs)["family_id"].to_numpy())


async def _entitlements_of(connection: AsyncConnection, family_ids: np.ndarray) -> pl.DataFrame:
    """The current entitlements of the families, in id order (the order they were written)."""
    chunks = [
        await read_entitlements(connection, families=FamilySelection.of(*ids.tolist()))
        for ids in np.array_split(family_ids, max(1, len(family_ids) // 5_000))
    ]
    return pl.concat(chunks).sort("id")


_ENTITLEMENT_SCHEMA = {
    "family_id": pl.Int64, "person_id": pl.Int64, "beneficiary_key": pl.Int64,
    "programme": pl.String, "amount_tiyn": pl.Int64, "period_start": pl.Date, "period_end": pl.Date,
}  # fmt: skip


def _empty_entitlements() -> pl.DataFrame:
    return pl.DataFrame(schema=_ENTITLEMENT_SCHEMA)


def entitlement_frame(result: PopulationResult, registry: RegistrySlice) -> pl.DataFrame:
    """The eligible decisions of a population result, keyed by database ids."""
    columns = result.decision_columns()
    codes = columns["programme_codes"]
    person_row = columns["person_row"]
    person_id = np.where(person_row >= 0, registry.person_ids[np.maximum(person_row, 0)], 0)
    return pl.DataFrame(
        {
            "family_id": registry.family_ids[columns["family_row"]],
            "person_id": pl.Series(person_id).replace(0, None),
            "beneficiary_key": person_id,
            # Gathered in polars: a numpy array of strings converts five times slower.
            "programme": pl.Series(codes.tolist(), dtype=pl.String).gather(columns["programme"]),
            "amount_tiyn": columns["amount_tiyn"].astype(np.int64),
            "period_start": columns["period_start"],
            "period_end": columns["period_end"],
        }
    ).with_columns(pl.col("period_start").cast(pl.Date), pl.col("period_end").cast(pl.Date))


@dataclass(frozen=True, slots=True)
class Diff:
    """New, changed and ended entitlements of the same families."""

    new: pl.DataFrame
    changed: pl.DataFrame  # new values, with `id` and `previous_amount_tiyn` of the old row
    ended: pl.DataFrame  # the old rows


_CHANGE_COLUMNS = [
    "family_id", "person_id", "programme", "change", "previous_amount_tiyn", "amount_tiyn",
    "period_start", "period_end", "previous_period_end",
]  # fmt: skip


def diff_entitlements(*, old: pl.DataFrame, new: pl.DataFrame) -> Diff:
    """Compare the current entitlements with a run's eligible set, by (family, programme, unit).

    One full join classifies every row (a steady-state run compares two million rows to find
    none changed): in `new` only, in both and different, in `old` only. Rows keep the order of
    `new`, then of `old`.
    """
    previous = old.select(
        *ENTITLEMENT_KEY,
        "id",
        pl.lit(True).alias("_in_old"),
        pl.col("person_id").alias("previous_person_id"),
        pl.col("amount_tiyn").alias("previous_amount_tiyn"),
        pl.col("period_start").alias("previous_start"),
        pl.col("period_end").alias("previous_end"),
    )
    joined = new.with_columns(pl.lit(True).alias("_in_new")).join(
        previous, on=ENTITLEMENT_KEY, how="full", coalesce=True, maintain_order="left_right"
    )
    differs = (
        (pl.col("amount_tiyn") != pl.col("previous_amount_tiyn"))
        | pl.col("period_start").ne_missing(pl.col("previous_start"))
        | pl.col("period_end").ne_missing(pl.col("previous_end"))
    )
    ended = joined.filter(pl.col("_in_new").is_null()).select(
        *ENTITLEMENT_KEY,
        "id",
        pl.col("previous_person_id").alias("person_id"),
        pl.col("previous_amount_tiyn").alias("amount_tiyn"),
        pl.col("previous_start").alias("period_start"),
        pl.col("previous_end").alias("period_end"),
    )
    return Diff(
        new=joined.filter(pl.col("_in_old").is_null()).select(new.columns),
        changed=joined.filter(pl.col("_in_old") & pl.col("_in_new") & differs).select(
            *new.columns, "id", "previous_amount_tiyn", "previous_start", "previous_end"
        ),
        ended=ended.select(old.columns),
    )


async def _apply_diff(
    connection: AsyncConnection,
    summary: RunSummary,
    *,
    old: pl.DataFrame,
    new: pl.DataFrame,
) -> None:
    if _same_rows(old, new):  # the steady state: nothing to classify, nothing to write
        summary.eligible += new.height
        return
    diff = diff_entitlements(old=old, new=new)
    # Sorted by the unique key, the index takes the rows in order (a third faster in a B-tree).
    fresh = pl.concat(
        [diff.new.select(list(_ENTITLEMENT_SCHEMA)), diff.changed.select(list(_ENTITLEMENT_SCHEMA))]
    ).sort(ENTITLEMENT_KEY)
    changes = pl.concat(
        [
            diff.new.with_columns(
                pl.lit(None, pl.Int64).alias("previous_amount_tiyn"), pl.lit("new").alias("change")
            ),
            diff.changed.with_columns(
                pl.lit("changed").alias("change"),
                pl.col("previous_end").alias("previous_period_end"),
            ),
            diff.ended.with_columns(
                pl.col("amount_tiyn").alias("previous_amount_tiyn"),
                pl.lit(None, pl.Int64).alias("amount_tiyn"),
                pl.lit("ended").alias("change"),
            ),
        ],
        how="diagonal_relaxed",
    ).select(_CHANGE_COLUMNS)
    summary.eligible += new.height
    summary.new += diff.new.height
    summary.changed += diff.changed.height
    summary.ended += diff.ended.height
    if changes.height == 0:
        return  # nothing changed: the entitlements stay as they are, untouched
    stale_ids = pl.concat([diff.changed["id"], diff.ended["id"]]).to_numpy()
    await _delete_ids(connection, stale_ids)
    # Straight into the tables, in key order (the ids follow it): COPY on PostgreSQL.
    run = pl.lit(summary.run_id, pl.Int64).alias("run_id")
    await bulk_insert(connection, EntitlementChange.__table__, changes.with_columns(run))
    await bulk_insert(connection, Entitlement.__table__, fresh.with_columns(run))


_COMPARED = [*ENTITLEMENT_KEY, "person_id", "amount_tiyn", "period_start", "period_end"]


def _same_rows(old: pl.DataFrame, new: pl.DataFrame) -> bool:
    """Whether a run's eligible rows are exactly the current entitlements (then the diff is
    empty): two sorts and a compare cost about a third of the diff's full join. Any
    difference, even one the diff would not count, leaves the classifying to the diff."""
    if old.height != new.height:
        return False
    return (
        old.select(_COMPARED)
        .sort(ENTITLEMENT_KEY)
        .equals(new.select(_COMPARED).sort(ENTITLEMENT_KEY))
    )


async def bulk_insert(connection: AsyncConnection, table: Any, frame: pl.DataFrame) -> None:
    """Insert a frame's rows into `table` (COPY on PostgreSQL, executemany elsewhere)."""
    if frame.height == 0:
        return
    if connection.dialect.name == "postgresql":
        driver = await driver_in_transaction(connection)
        # Binary when every column has a binary form here (the entitlement rows): the server
        # parses no text. Otherwise CSV (the registry's lists and timestamps).
        rows = pgcopy.binary_copy_frame(table, frame)
        if rows is not None:
            await driver.copy_to_table(
                table.name, source=io.BytesIO(rows), columns=frame.columns, format="binary"
            )
            return
        # CSV has no lists: JSON-encode list columns (polars escapes them correctly).
        frame = frame.with_columns(
            pl.struct(pl.col(name).alias("v"))
            .struct.json_encode()
            .str.slice(5)
            .str.strip_suffix("}")
            .alias(name)
            for name, dtype in frame.schema.items()
            if isinstance(dtype, pl.List)
        )
        buffer = io.BytesIO()
        frame.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.f%z")
        buffer.seek(0)
        await driver.copy_to_table(table.name, source=buffer, columns=frame.columns, format="csv")
        return
    await connection.execute(insert(table), frame.to_dicts())


async def _delete_ids(connection: AsyncConnection, ids: np.ndarray) -> None:
    if len(ids) == 0:
        return
    if connection.dialect.name == "postgresql":
        statement = text("DELETE FROM entitlements WHERE id = ANY(:ids)").bindparams(
            bindparam("ids", type_=ARRAY(BigInteger))
        )
        await connection.execute(statement, {"ids": ids.tolist()})
        return
    for start in range(0, len(ids), 500):  # SQLite limits the number of bound parameters
        chunk = ids[start : start + 500].tolist()
        await connection.execute(delete(Entitlement).where(Entitlement.id.in_(chunk)))


async def _lock(connection: AsyncConnection, *, shared: bool) -> None:
    if connection.dialect.name != "postgresql":
        return  # SQLite serialises writers on its own
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    await connection.execute(text(f"SELECT {function}(:key)"), {"key": _RUN_LOCK_KEY})


async def _start_run(
    connection: AsyncConnection,
    *,
    scope: str,
    on: date,
    parameters: ParameterSet,
    family_id: int | None = None,
) -> int:
    result = await connection.execute(
        insert(EligibilityRun)
        .values(
            scope=scope,
            status="running",
            evaluated_on=on,
            parameter_version=parameters.version,
            rule_versions=rule_versions(),
            family_id=family_id,
            started_at=datetime.now(UTC),
        )
        .returning(EligibilityRun.id)
    )
    return int(result.scalar_one())


async def _finish_run(connection: AsyncConnection, summary: RunSummary) -> None:
    await connection.execute(
        update(EligibilityRun)
        .where(EligibilityRun.id == summary.run_id)
        .values(
            status="finished",
            families=summary.families,
            persons=summary.persons,
            eligible=summary.eligible,
            new_count=summary.new,
            changed_count=summary.changed,
            ended_count=summary.ended,
            registry_snapshot=summary.registry_snapshot,
            finished_at=datetime.now(UTC),
        )
    )


async def reevaluate_family(
    connection: AsyncConnection, *, family_id: int, on: date, parameters: ParameterSet | None = None
) -> tuple[RunSummary, FamilyEvaluation | None]:
    """Evaluate one family with explanations, record its decisions and update its entitlements."""
    parameters = parameters or default_parameters()
    await _lock(connection, shared=True)
    summary = RunSummary(
        run_id=await _start_run(
            connection, scope="family", on=on, parameters=parameters, family_id=family_id
        )
    )
    selection = FamilySelection.of(family_id)
    registry = await read_registry_slice(connection, families=selection)
    old = await read_entitlements(connection, families=selection)
    evaluation = None
    if registry is None:
        new = _empty_entitlements()
    else:
        evaluation = explain_population_family(
            population=registry.population, on=on, parameters=parameters
        )
        await _record_decisions(connection, summary.run_id, family_id, evaluation)
        new = _frame_from_decisions(evaluation, family_id)
        summary.families, summary.persons = 1, registry.population.n_persons
    await _apply_diff(connection, summary, old=old, new=new)
    await _finish_run(connection, summary)
    return summary, evaluation


def _frame_from_decisions(evaluation: FamilyEvaluation, family_id: int) -> pl.DataFrame:
    """The eligible decisions of one family, in the shape of `entitlement_frame`."""
    rows = [
        {
            "family_id": family_id,
            "person_id": None if d.person_id is None else int(d.person_id),
            "beneficiary_key": 0 if d.person_id is None else int(d.person_id),
            "programme": d.programme,
            "amount_tiyn": d.amount_tiyn,
            "period_start": d.period_start,
            "period_end": d.period_end,
        }
        for d in evaluation.eligible()
    ]
    return pl.DataFrame(rows, schema=_empty_entitlements().schema)


async def _record_decisions(
    connection: AsyncConnection, run_id: int, family_id: int, evaluation: FamilyEvaluation
) -> None:
    now = datetime.now(UTC)
    rows = [
        {
            "run_id": run_id,
            "family_id": family_id,
            "person_id": None if d.person_id is None else int(d.person_id),
            "programme": d.programme,
            "eligible": d.eligible,
            "amount_tiyn": d.amount_tiyn,
            "period_start": d.period_start,
            "period_end": d.period_end,
            "conditions": [
                {
                    "id": c.id,
                    "label": c.label,
                    "value": _plain(c.value),
                    "op": c.op,
                    "threshold": _plain(c.threshold),
                    "passed": bool(c.passed),
                }
                for c in d.conditions
            ],
            "rule_version": d.rule_version,
            "parameter_version": d.parameters_version,
            "decided_at": now,
        }
        for d in evaluation.decisions
    ]
    if rows:
        await connection.execute(insert(Decision), rows)


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a condition's value (dates as ISO strings, numpy as Python)."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value
