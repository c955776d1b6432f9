"""The `socialwallet` command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import timedelta
from importlib.metadata import entry_points
from typing import Annotated

import typer
import uvloop
from pydantic import ValidationError
from rich.console import Console

from app.auth import Role, TokenRejected, build_dev_issuer
from app.cli.settings import load_settings, settings_problems
from app.db import create_engine, create_session_factory
from app.http_protocol import BoundedHttpToolsProtocol
from app.logging import configure_logging, log_config
from app.migrate import upgrade_to_head
from app.settings import Settings
from familymap.clock import astana_today

cli = typer.Typer(
    name="socialwallet",
    help="Social Wallet: the family map, proactive offers, the wallet and vouchers.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)
# Request line and headers: a browser's cookies and a bearer token fit many times over.
MAX_HEADER_BYTES = 64 * 1024


def _settings() -> Settings:
    return load_settings(console)


@cli.command()
def migrate() -> None:
    """Apply all database migrations to DATABASE_URL (creates the SQLite file if needed)."""
    settings = _settings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())
    console.print("[green]Database is at the newest migration.[/green]")


@cli.command("seed-demo")
def seed_demo_command(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing if the registry already has families.")
    ] = False,
) -> None:
    """Load the demo story families into the registry."""
    from app.demo import database_is_empty, seed_demo

    settings = _settings()

    async def run() -> int | None:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session, session.begin():
                if not await database_is_empty(session):
                    if if_empty:
                        return None
                    console.print("[red]The registry is not empty; demo data not loaded.[/red]")
                    raise typer.Exit(1)
                return await seed_demo(session, today=astana_today())
        finally:
            await engine.dispose()

    added = asyncio.run(run())
    if added is None:
        console.print("Registry already has data; demo data left as it is.")
    else:
        console.print(f"[green]Loaded the demo families: {added} persons.[/green]")


@cli.command()
def token(
    role: Annotated[list[Role], typer.Option("--role", help="Role to grant; repeat for more.")],
    subject: Annotated[
        str,
        typer.Option(help="Subject: an IIN (CITIZEN), a merchant id (SCHOOL/PHARMACY), a name."),
    ],
    ttl_minutes: Annotated[int, typer.Option(min=1, max=7 * 24 * 60, help="Lifetime.")] = 720,
) -> None:
    """Mint a development token (dev only; production tokens come from the identity provider)."""
    settings = _settings()
    issuer = build_dev_issuer(settings)
    if issuer is None:
        console.print("[red]The dev token issuer is disabled when ENVIRONMENT=prod.[/red]")
        raise typer.Exit(2)
    try:
        minted = issuer.mint(roles=role, subject=subject, ttl=timedelta(minutes=ttl_minutes))
    except TokenRejected as exc:
        console.print(f"[red]Cannot mint that token:[/red] {exc.reason}")
        raise typer.Exit(2) from exc
    typer.echo(minted)


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    with_jobs: Annotated[
        bool,
        typer.Option(
            # --no-background-jobs is the old spelling of the default, kept for scripts.
            "--with-jobs/--without-jobs",
            "--background-jobs/--no-background-jobs",
            help="Also run the relays and the wallet jobs in the server (a single machine; "
            "otherwise `socialwallet worker` runs them).",
        ),
    ] = False,
    max_header_bytes: Annotated[
        int,
        typer.Option(
            min=4096,
            help="Refuse a request whose request line and headers pass this size (400).",
        ),
    ] = MAX_HEADER_BYTES,
) -> None:
    """Serve the API with uvicorn (no jobs unless --with-jobs); in dev, print the GraphiQL
    URL and demo tokens first."""
    import uvicorn

    # uvicorn builds the app in its own worker processes from the environment.
    os.environ["BACKGROUND_JOBS"] = "true" if with_jobs else "false"
    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    configure_logging(level=settings.log_level, json=settings.log_json)
    if not settings.is_prod:
        _print_dev_banner(settings, host=host, port=port)
    uvicorn.run(
        "app.asgi:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # uvicorn applies this in every worker process it spawns, not only in this one.
        log_config=log_config(level=settings.log_level, json=settings.log_json),
        # A spawned worker answers the parent's health check only once its interpreter has
        # started and imported this CLI's modules; on a busy machine that can take longer
        # than uvicorn's 5 s, and the parent would kill and respawn it forever.
        timeout_worker_healthcheck=30,
        # Our own middleware logs every request with its id; uvicorn's line would repeat it
        # (and, for GET, the query string).
        access_log=False,
        proxy_headers=True,
        # httptools with a bound on the request line and headers (app/http_protocol.py; h11
        # has one too, but its pure-Python parsing costs the hot path). Bodies are bounded by
        # the routes themselves (GRAPHQL_MAX_BODY_BYTES, /sms/inbound's 8 KiB).
        http=BoundedHttpToolsProtocol,
        h11_max_incomplete_event_size=max_header_bytes,
    )


@cli.command()
def worker() -> None:
    """Run the SMS and bank relays and the wallet jobs until SIGTERM or Ctrl-C (no HTTP).

    Run as many as you like: each outbox message and each job's pass is taken by one worker.
    """
    from app.jobs import background_jobs

    # The settings refuse the log gateways in prod (they would mark messages sent unsent).
    settings = _settings().model_copy(update={"background_jobs": True})

    async def run() -> None:
        engine = create_engine(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # SIGTERM lets the batch in hand finish and record its outcomes; a worker killed
        # outright leaves its claims to expire, and another worker sends them again under
        # the same message key, which the gateway takes as the same message.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with background_jobs(settings, create_session_factory(engine)):
                await stop.wait()
        finally:
            await engine.dispose()

    # uvloop's event loop, as `serve` has through uvicorn: the relays cost less CPU a send.
    uvloop.run(run())


def _print_dev_banner(settings: Settings, *, host: str, port: int) -> None:
    from app.demo import demo_citizen_iin, demo_tokens

    issuer = build_dev_issuer(settings)
    assert issuer is not None

    async def find_citizen() -> str | None:
        engine = create_engine(settings)
        try:
            async with create_session_factory(engine)() as session:
                return await demo_citizen_iin(session)
        finally:
            await engine.dispose()

    tokens = demo_tokens(issuer, citizen_iin=asyncio.run(find_citizen()))
    out = Console()
    out.print(f"\n[bold]GraphiQL:[/bold] http://{host}:{port}/graphql\n")
    out.print("[bold]Demo tokens[/bold] (paste as the header Authorization: Bearer <token>):")
    for who, value in tokens.items():
        out.print(f"\n[cyan]{who}[/cyan]\n{value}", soft_wrap=True)
    example = {"query": "{ me { subject roles iin merchantId tokenExpiresAt } }"}
    out.print("\n[bold]Try:[/bold]", soft_wrap=True)
    out.print(
        f"curl -s http://{host}:{port}/graphql -H 'content-type: application/json' "
        f"-H \"authorization: Bearer $TOKEN\" -d '{json.dumps(example)}'\n",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )


def _register_subcommands() -> None:
    from app.cli.audit import audit_cli
    from app.cli.bank import bank_cli
    from app.cli.eligibility import eligibility_cli, generate
    from app.cli.imports import import_command
    from app.cli.ledger import ledger_cli
    from app.cli.offers import jobs_cli, offers_cli
    from app.cli.operations import operations_cli
    from app.cli.outbox import outbox_cli
    from app.cli.report import report_cli
    from app.cli.vouchers import vouchers_cli

    cli.command()(generate)
    cli.command("import")(import_command)
    cli.add_typer(eligibility_cli, name="eligibility")
    cli.add_typer(outbox_cli, name="outbox")
    cli.add_typer(offers_cli, name="offers")
    cli.add_typer(jobs_cli, name="jobs")
    cli.add_typer(operations_cli, name="operations")
    cli.add_typer(audit_cli, name="audit")
    cli.add_typer(ledger_cli, name="ledger")
    cli.add_typer(vouchers_cli, name="vouchers")
    cli.add_typer(report_cli, name="report")
    cli.add_typer(bank_cli, name="bank")
    # Command groups of other installed packages (`bench`): they stand on `app`, so `app`
    # finds them by entry point instead of importing them.
    for plugin in entry_points(group="socialwallet.commands"):
        cli.add_typer(plugin.load(), name=plugin.name)


_register_subcommands()


def main() -> None:
    # Every command logs JSON with IINs masked, as the server does; a command that cannot
    # read its settings says so itself, so logging falls back to the defaults here.
    try:
        settings = Settings()
    except ValueError:
        configure_logging()
    else:
        configure_logging(level=settings.log_level, json=settings.log_json)
    try:
        cli()
    except ValidationError as exc:
        # Commands that read the settings themselves: a refusal is a message, not a traceback.
        console.print(f"[red]Bad settings:[/red] {settings_problems(exc)}", highlight=False)
        raise SystemExit(2) from None
