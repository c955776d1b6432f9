"""The `socialwallet` command line: one module per command group, composed by
`app.cli.commands` (`socialwallet = app.cli.commands:main`, pyproject.toml).

Nothing is imported here: a command group's module (say `app.cli.eligibility`, which the
benchmarks use) must be importable without composing the whole CLI, whose plugins import it.
"""
