"""Settings for the command line: a refusal is a clean message and exit code 2, no traceback."""

from __future__ import annotations

import typer
from pydantic import ValidationError
from rich.console import Console

from app.settings import Settings


def settings_problems(exc: ValidationError) -> str:
    """What is wrong with the settings, one line per problem, without pydantic's framing."""
    return "\n".join(str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())


def load_settings(console: Console) -> Settings:
    """The settings from the environment, or exit 2 with what is wrong with them."""
    try:
        return Settings()
    except ValidationError as exc:
        console.print(f"[red]Bad settings:[/red] {settings_problems(exc)}", highlight=False)
        raise typer.Exit(2) from None
