"""The `socialwallet` command line: one module per command group (`commands` composes them).

`socialwallet = app.cli:main` (pyproject.toml) runs `main`; tests drive `cli` with typer's
runner.
"""

from app.cli.commands import cli, main

__all__ = ["cli", "main"]
