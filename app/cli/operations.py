"""CLI commands of the trusted documents: list the registered operations, check them."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from app.settings import Settings
from app.web_client import OPERATIONS_DIR as CLIENT_OPERATIONS_DIR
from graphql_schema.limits import limit_rules
from graphql_schema.schema import build_schema
from graphql_schema.trusted_documents import OPERATIONS_DIR, OperationRegistry

DIRECTORIES = typer.Option(
    [OPERATIONS_DIR, CLIENT_OPERATIONS_DIR],
    "--dir",
    help="Where the .graphql files are (repeat for several; default: the server's and the "
    "reference client's).",
    file_okay=False,
)

console = Console(stderr=True)
operations_cli = typer.Typer(
    help="The app's registered GraphQL operations (trusted documents).", no_args_is_help=True
)


@operations_cli.command("list")
def list_command(
    as_json: bool = typer.Option(False, "--json", help="One JSON object: name to hash."),
    directories: list[Path] = DIRECTORIES,
) -> None:
    """List the registered operations: SHA-256 (what clients send), type and name."""
    registry = OperationRegistry.load(*directories)
    if as_json:
        typer.echo(json.dumps({d.name: d.sha256 for d in registry.documents}, indent=2))
        return
    for document in registry.documents:
        typer.echo(f"{document.sha256}  {document.operation_type:<8}  {document.name}")


@operations_cli.command("check")
def check_command(directories: list[Path] = DIRECTORIES) -> None:
    """Validate every registered operation against the schema and the limits; exit 1 if any
    is wrong."""
    registry = OperationRegistry.load(*directories)
    settings = Settings(environment="dev")
    # The limits are the environment's settings (GRAPHQL_MAX_*), the schema is the same.
    problems = registry.check(
        build_schema(settings)._schema,
        rules=(limit_rules(Settings()),),
        max_tokens=Settings().graphql_max_tokens,
    )
    for name, messages in problems.items():
        for message in messages:
            console.print(f"[red]{name}[/red]: {message}")
    if problems:
        raise typer.Exit(1)
    console.print(f"[green]{len(registry.documents)} operations are valid.[/green]")
