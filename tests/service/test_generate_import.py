"""The generator's two outputs agree: import files and the direct load give the same registry,
and so the same entitlements."""

from __future__ import annotations

import sqlite3
from collections import Counter

from typer.testing import CliRunner

from app.cli.commands import cli

runner = CliRunner()

# Every registry column but ids given by the database, timestamps and provenance.
PERSONS = """SELECT iin, family_id, role, last_name, first_name, patronymic, birth_date, sex, phone,
    language, iban, date_of_death, monthly_income_tiyn, contribution_months, employment,
    job_lost_on, registered_unemployed, disability_group, disability_child,
    disability_established_on, capacity_loss_pct, full_time_student, school_grade, school_id,
    kindergarten, insured, polyclinic_attached, chronic_conditions, award, kandas_until
    FROM persons ORDER BY iin"""
FAMILIES = """SELECT id, region, housing_owned, area_m2, rooms, in_social_housing_queue
    FROM families ORDER BY id"""


def _entitlements(db) -> Counter:
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT e.programme, e.amount_tiyn, p.iin FROM entitlements e "
            "LEFT JOIN persons p ON p.id = e.person_id"
        ).fetchall()
    return Counter(rows)


def test_import_files_and_direct_load_give_the_same_entitlements(tmp_path, monkeypatch):
    files = tmp_path / "files"
    imported_db, loaded_db = tmp_path / "imported.db", tmp_path / "loaded.db"
    # Given the same synthetic population written as files
    written = runner.invoke(
        cli,
        [
            "generate",
            "--families",
            "300",
            "--seed",
            "9",
            "--as-of",
            "2026-11-01",
            "--out",
            str(files),
        ],
    )
    assert written.exit_code == 0, written.output
    # When the files are imported (which re-evaluates the families they changed) ...
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{imported_db}")
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    imported = runner.invoke(cli, ["import", str(files)])
    assert imported.exit_code == 0, imported.output
    assert "Re-evaluated 300 families" in imported.output
    # ... and the same population is loaded straight into another database and evaluated
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{loaded_db}")
    loaded = runner.invoke(
        cli, ["generate", "--families", "300", "--seed", "9", "--as-of", "2026-11-01"]
    )
    assert loaded.exit_code == 0, loaded.output
    assert runner.invoke(cli, ["eligibility", "run"]).exit_code == 0
    # Then both hold the same persons and the same entitlements, and nothing was refused
    with sqlite3.connect(imported_db) as a, sqlite3.connect(loaded_db) as b:
        for query in (PERSONS, FAMILIES):
            assert a.execute(query).fetchall() == b.execute(query).fetchall()
    assert _entitlements(imported_db) == _entitlements(loaded_db)
    assert sum(_entitlements(imported_db).values()) > 0
