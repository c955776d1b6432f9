"""The registry a batch run read, kept on the worker's disk, and the log of what changed since.

A batch run must evaluate every family (decisions move with the date), but it need not read
every family from PostgreSQL: it keeps, per range of family ids, the registry columns it read
and the eligible rows it left in `entitlements`, in files on local disk. The next run reads
again only the families that triggers logged in `registry_changes` (any write to persons,
families or entitlements but the batch run's own: migration 0012), patches the kept columns,
evaluates everyone, and reads current entitlements only of the families whose rows differ
from the kept ones.

The files are never trusted on their own: a run names its files (a fresh token) in its own
`eligibility_runs` row, in the transaction that deletes the log rows it consumed. The next
run uses the files only if the newest finished batch run recorded exactly that token and
every file is there with its size (each is a zip whose members carry a CRC, checked when
read). Another machine, a crash between the files and the commit, a restored database: the
token differs or the files are missing, and the run reads everything. Files no run can use
any more are removed at the start of the next run. PostgreSQL only (SQLite has no log).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from familymap.engine.dates import NO_DATE
from familymap.rules import RULE_CODES
from familymap.store import FAMILY_FIELDS, PERSON_FIELDS
from familymap.tables import EligibilityRun

_FORMAT = 2
# A programme travels as its rule's position (1-based); a run's rows name current rules only.
_POSITIONS = {code: position for position, code in enumerate(RULE_CODES, start=1)}
_CODES = {position: code for code, position in _POSITIONS.items()}
# What the kept numbers mean: the fields and the order of their values (an enumeration is
# kept as a position), and the rules' order. Files of another layout (another version of
# the code) are not used.
_LAYOUT = hashlib.sha256(
    repr(
        (
            [(f.name, f.kind, f.values) for f in (*PERSON_FIELDS, *FAMILY_FIELDS)],
            RULE_CODES,
        )
    ).encode()
).hexdigest()
_MANIFEST = "manifest-{token}.json"


@dataclass(frozen=True, slots=True)
class ChangeLog:
    """The `registry_changes` rows a run's snapshot saw: the families to read again."""

    snapshot: str  # pg_current_snapshot() of the reads, to delete exactly these rows
    family_ids: np.ndarray  # int64, sorted, unique
    everything: bool  # a TRUNCATE was logged: nothing kept can be trusted


async def read_change_log(reader: AsyncConnection, *, families: bool) -> ChangeLog:
    """The log as `reader`'s snapshot sees it (one statement: one snapshot in any isolation).

    Without `families`, only the snapshot (a run that reads everything needs no list)."""
    listed = "array_agg(DISTINCT family_id)" if families else "NULL::bigint[]"
    row = (
        await reader.execute(
            text(
                f"SELECT pg_current_snapshot()::text, {listed},"  # noqa: S608 - fixed text
                " coalesce(bool_or(family_id IS NULL), false) FROM registry_changes"
            )
        )
    ).one()
    ids = np.array([i for i in row[1] or () if i is not None], dtype=np.int64)
    return ChangeLog(snapshot=row[0], family_ids=np.sort(ids), everything=bool(row[2]))


async def consume_change_log(connection: AsyncConnection, log: ChangeLog) -> None:
    """Delete the log rows the run's reads saw (rows committed since stay for the next run).

    Rows of this transaction itself are its own writes, which its reads saw too."""
    await connection.execute(
        text(
            "DELETE FROM registry_changes"
            " WHERE xid = (pg_current_xact_id_if_assigned()::text)::bigint"
            " OR pg_visible_in_snapshot(xid::text::xid8, CAST(CAST(:seen AS text) AS pg_snapshot))"
        ),
        {"seen": log.snapshot},
    )


async def batch_writes_entitlements(connection: AsyncConnection, *, writing: bool) -> None:
    """Mark this transaction's entitlement writes as the batch run's own (not logged): the
    next batch run either kept the rows it wrote or reads everything. Unmarked after."""
    await connection.execute(
        text("SELECT set_config('socialwallet.eligibility_batch_writing', :value, true)"),
        {"value": "on" if writing else "off"},
    )


async def recorded_token(connection: AsyncConnection) -> str | None:
    """The files the newest finished batch run left (None: none, or it kept none)."""
    return await connection.scalar(
        select(EligibilityRun.registry_snapshot)
        .where(EligibilityRun.scope == "batch", EligibilityRun.status == "finished")
        .order_by(EligibilityRun.id.desc())
        .limit(1)
    )


@dataclass(frozen=True, slots=True)
class RangeFiles:
    """The files of one range of families: registry columns and the eligible rows left."""

    persons: str
    families: str
    entitlements: str


@dataclass(slots=True)
class SnapshotFiles:
    """The kept files of one database: those the last run left (if usable), those this run
    writes. A range missing from `previous` is read whole from the database."""

    directory: Path
    range_families: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    previous: dict[int, RangeFiles] = field(default_factory=dict)
    written: dict[int, RangeFiles] = field(default_factory=dict)

    @classmethod
    def open(cls, directory: Path, *, recorded: str | None, range_families: int) -> SnapshotFiles:
        """The files in `directory` the database's last batch run recorded, and no others."""
        directory.mkdir(parents=True, exist_ok=True)
        files = cls(directory, range_families)
        manifest = _load_manifest(directory, recorded, range_families)
        if manifest is not None:
            files.previous = manifest
        keep = {f"{_MANIFEST.format(token=recorded)}"} if manifest is not None else set()
        keep |= {name for r in files.previous.values() for name in _names(r)}
        for path in directory.iterdir():  # a crashed run's files, or another database's
            if path.name not in keep:
                path.unlink()
        return files

    def read_columns(self, name: str) -> dict[str, np.ndarray]:
        with np.load(self.directory / name) as archive:  # zip members: CRC checked on read
            return {key: archive[key] for key in archive.files}

    def write_columns(self, columns: dict[str, np.ndarray]) -> str:
        name = f"{uuid.uuid4().hex}.npz"
        temporary = self.directory / f"{name}.part"
        with temporary.open("wb") as file:
            np.savez(file, allow_pickle=False, **columns)
        temporary.rename(self.directory / name)
        return name

    def read_entitlements(self, name: str) -> pl.DataFrame:
        return _entitlements_from_columns(self.read_columns(name))

    def write_entitlements(self, frame: pl.DataFrame) -> str:
        return self.write_columns(_entitlement_columns(frame))

    def keep(self, first: int, files: RangeFiles) -> None:
        self.written[first] = files

    def commit(self) -> str:
        """Write this run's manifest; the token goes into its `eligibility_runs` row."""
        manifest = {
            "format": _FORMAT,
            "layout": _LAYOUT,
            "range_families": self.range_families,
            "ranges": {str(first): _names(r) for first, r in sorted(self.written.items())},
            "sizes": {
                name: (self.directory / name).stat().st_size
                for r in self.written.values()
                for name in _names(r)
            },
        }
        path = self.directory / _MANIFEST.format(token=self.token)
        temporary = path.with_suffix(".part")
        temporary.write_text(json.dumps(manifest))
        with temporary.open("rb") as file:
            os.fsync(file.fileno())
        temporary.rename(path)
        return self.token


def _names(files: RangeFiles) -> list[str]:
    return [files.persons, files.families, files.entitlements]


def _load_manifest(
    directory: Path, token: str | None, range_families: int
) -> dict[int, RangeFiles] | None:
    if token is None or not re.fullmatch(r"[0-9a-f]{32}", token):
        return None
    path = directory / _MANIFEST.format(token=token)
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (manifest.get("format"), manifest.get("layout"), manifest.get("range_families")) != (
        _FORMAT,
        _LAYOUT,
        range_families,
    ):
        return None
    for name, size in manifest["sizes"].items():
        try:
            if (directory / name).stat().st_size != size:
                return None
        except OSError:
            return None
    return {int(first): RangeFiles(*names) for first, names in manifest["ranges"].items()}


def is_damaged(error: Exception) -> bool:
    """Whether reading a kept file failed because the file is not what was written."""
    return isinstance(error, OSError | ValueError | KeyError | zipfile.BadZipFile)


# Entitlement rows as plain columns (no nulls: 0 for no person, NO_DATE for no date).
def _entitlement_columns(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    days = {
        name: frame[name].cast(pl.Int32).fill_null(NO_DATE).to_numpy()
        for name in ("period_start", "period_end")
    }
    return {
        "family_id": frame["family_id"].to_numpy(),
        "person_id": frame["person_id"].fill_null(0).to_numpy(),
        "beneficiary_key": frame["beneficiary_key"].to_numpy(),
        "programme": frame["programme"]
        .replace_strict(_POSITIONS, return_dtype=pl.Int16)
        .to_numpy(),
        "amount_tiyn": frame["amount_tiyn"].to_numpy(),
        **days,
    }


def _entitlements_from_columns(columns: dict[str, np.ndarray]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "family_id": columns["family_id"],
            "person_id": pl.Series(columns["person_id"]).replace(0, None),
            "beneficiary_key": columns["beneficiary_key"],
            "programme": pl.Series(columns["programme"]).replace_strict(
                _CODES, return_dtype=pl.String
            ),
            "amount_tiyn": columns["amount_tiyn"],
            "period_start": pl.Series(columns["period_start"]).replace(NO_DATE, None).cast(pl.Date),
            "period_end": pl.Series(columns["period_end"]).replace(NO_DATE, None).cast(pl.Date),
        }
    )
