"""The `socialwallet bench` commands, registered with the CLI through an entry point."""

from __future__ import annotations

import typer

from bench.eligibility import bench_eligibility
from bench.offers import bench_offers
from bench.redeem import bench_redeem
from bench.relay import bench_relay
from bench.screens import bench_screens
from bench.wallet_cli import bench_wallet_command

bench_cli = typer.Typer(
    help="Benchmarks: each works on an empty DATABASE_URL and prints JSON last.",
    no_args_is_help=True,
)
bench_cli.command("eligibility")(bench_eligibility)
bench_cli.command("wallet")(bench_wallet_command)
bench_cli.command("redeem")(bench_redeem)
bench_cli.command("offers")(bench_offers)
bench_cli.command("screens")(bench_screens)
bench_cli.command("relay")(bench_relay)
