"""`socialwallet vouchers ...`: merchant and prescription imports."""

from __future__ import annotations

import asyncio
import csv
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.db import create_engine, create_session_factory
from app.settings import Settings

console = Console(stderr=True)
vouchers_cli = typer.Typer(
    help="Merchants and prescriptions of the vouchers.", no_args_is_help=True
)


@vouchers_cli.command("import-merchants")
def import_merchants_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file.")],
) -> None:
    """Register merchants from a CSV: external_code,name,category,region[,merchant_id]."""
    from vouchers.merchants import import_merchants, read_merchant_file

    settings = Settings()

    async def run() -> tuple[int, list[str]]:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session, session.begin():
                return await import_merchants(session=session, rows=read_merchant_file(path))
        finally:
            await engine.dispose()

    registered, refused = asyncio.run(run())
    for line in refused:
        console.print(line, markup=False, highlight=False)
    console.print(f"[green]{registered} merchants registered[/green], {len(refused)} refused.")
    if refused:
        raise typer.Exit(1)


def _whole_number(text: str) -> int:
    """A CSV cell of ASCII digits as an int; int() alone would also read "１２" or " 1_0 "."""
    if not (0 < len(text) <= 18 and text.isascii() and text.isdigit()):
        raise ValueError("a whole number is written in ASCII digits")
    return int(text)


@vouchers_cli.command("import-prescriptions")
def import_prescriptions_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV file.")],
    source: Annotated[str, typer.Option(help="The health system that issued them.")] = "import",
) -> None:
    """Record e-prescriptions from a CSV: external_id,patient_iin,drug_code,quantity,
    unit_price_tiyn,valid_until,prescribing_org. Idempotent by external_id."""
    from familymap.iin import mask_iin
    from vouchers.errors import VoucherError
    from vouchers.medicines import PrescriptionInput, record_prescription

    settings = Settings()

    async def run() -> tuple[int, list[str]]:
        engine = create_engine(settings)
        recorded, refused = 0, []
        try:
            async with create_session_factory(engine)() as session, session.begin():
                with path.open(newline="", encoding="utf-8") as handle:
                    for line, row in enumerate(csv.DictReader(handle), start=2):
                        try:
                            async with session.begin_nested():
                                _, created = await record_prescription(
                                    session=session,
                                    prescription=PrescriptionInput(
                                        external_id=row["external_id"],
                                        patient_iin=row["patient_iin"],
                                        drug_code=row["drug_code"],
                                        quantity=_whole_number(row["quantity"]),
                                        unit_price_tiyn=_whole_number(row["unit_price_tiyn"]),
                                        valid_until=date.fromisoformat(row["valid_until"]),
                                        prescribing_org=row["prescribing_org"],
                                    ),
                                    source=source,
                                )
                            recorded += created
                        except (VoucherError, KeyError, ValueError) as exc:
                            code = getattr(exc, "code", "BAD_USER_INPUT")
                            refused.append(f"{path.name}:{line} {code} {mask_iin(str(exc))}")
        finally:
            await engine.dispose()
        return recorded, refused

    recorded, refused = asyncio.run(run())
    for line in refused:
        console.print(line, markup=False, highlight=False)
    console.print(f"[green]{recorded} prescriptions recorded[/green], {len(refused)} refused.")
    if refused:
        raise typer.Exit(1)
