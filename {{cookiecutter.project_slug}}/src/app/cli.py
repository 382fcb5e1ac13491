"""The console script: `serve`, `worker`, `beat`, `check-config`, `dev`, `migrate`,
`create-tenant`, `create-user`, `api-keys`, `auth`, `dlq`, `purge`.

Configuration is validated before anything binds a port; a bad environment exits with status 2 and
one message naming every bad variable (never a value).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import uvicorn

from app.auth.key_commands import add_auth_commands
from app.auth.runtime_role import require_services_and_runtime_role
from app.commands.exits import announce, report_config_error, run_command, say
from app.dev.state import dev_services_for
from app.settings import ConfigError, Settings, load_settings
from app.tenants.key_commands import add_api_key_commands
from app.tenants.user_commands import add_user_commands
from app.worker.dlq_commands import add_dlq_commands

EXIT_CONFIG = 2
DEVSERVICES_DIR = Path(".devservices")


def _validated_settings(need_services: bool) -> Settings | None:
    try:
        settings = load_settings()
        if need_services:
            require_services_and_runtime_role(settings)
    except ConfigError as error:
        report_config_error(error)
        return None
    return settings


def _share_metrics_between_processes(prefix: str) -> None:
    """Processes that serve one port count into files of one directory, summed at scrape time.

    An unset PROMETHEUS_MULTIPROC_DIR gets a fresh temporary directory; a configured one is
    emptied first, since samples left by a previous run would be added in.
    """
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured is None:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=prefix)
        return
    for leftover in Path(configured).glob("*.db"):
        leftover.unlink()


def _run_server(host: str, port: int, workers: int = 1) -> int:
    settings = _validated_settings(need_services=True)
    if settings is None:
        return EXIT_CONFIG
    if workers > 1:
        _share_metrics_between_processes("api-metrics-")
    # After the multi-process directory is set.
    from app.observability.metrics import serve_metrics_apart

    try:
        serve_metrics_apart(settings, host, port)
    except ConfigError as error:
        report_config_error(error)
        return EXIT_CONFIG
    from app.http.server import server_options  # the web stack: `serve` and `dev` only

    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        workers=workers,
        # Header size, count and read deadline; keep-alive timeout (app.http.server).
        **server_options(settings),
    )
    return 0


def _check_config(_: argparse.Namespace) -> int:
    """Exactly the validation `serve` runs before it binds a port."""
    settings = _validated_settings(need_services=True)
    if settings is None:
        return EXIT_CONFIG
    announce(f"configuration OK (environment={settings.environment})", "configuration_ok")
    return 0


def _owner_and_runtime_urls() -> tuple[str, str] | None:
    settings = _validated_settings(need_services=False)
    if settings is None:
        return None
    if settings.database_owner_url is None or settings.database_url is None:
        say("DATABASE_OWNER_URL and DATABASE_URL are required")
        return None
    return settings.database_owner_url.get_secret_value(), settings.database_url.get_secret_value()


def _migrate(args: argparse.Namespace) -> int:
    """Upgrade (or downgrade) the schema as the owner role."""
    from app.db.migrate import downgrade, upgrade

    urls = _owner_and_runtime_urls()
    if urls is None:
        return EXIT_CONFIG
    if args.downgrade:
        downgrade(*urls, revision=args.revision or "-1")
    else:
        upgrade(*urls, revision=args.revision or "head")
    return 0


def _create_tenant(args: argparse.Namespace) -> int:
    """Create a tenant with its first API key and print both as one JSON line."""
    from app.tenants.admin import create_tenant_now

    urls = _owner_and_runtime_urls()
    if urls is None:
        return EXIT_CONFIG
    created = create_tenant_now(urls[0], args.name)
    print(json.dumps({"tenant_id": str(created.tenant_id), "api_key": created.api_key}))
    return 0


def _worker(args: argparse.Namespace) -> int:
    """Run a Celery worker: a separate process from the API, on CELERY_BROKER_URL."""
    from app.observability.logging import configure_logging
    from app.observability.telemetry import configure_tracing
    from app.worker.celery_app import create_celery
    from app.worker.celery_output import route_celery_output

    settings = _validated_settings(need_services=True)
    if settings is None:
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.effective_log_format)
    configure_tracing(settings)
    route_celery_output()
    if args.pool == "prefork":  # tasks run in forked children
        _share_metrics_between_processes("worker-metrics-")
    from app.worker.metrics import start_exporter

    broker = settings.broker_url.get_secret_value() if settings.broker_url else None
    start_exporter(settings.worker_metrics_port, broker, settings.task_queue)
    # --quiet: no banner on stdout; app.worker.celery_output logs `worker_started` instead.
    argv = ["--quiet", "worker", "--loglevel", settings.log_level]
    argv += ["--concurrency", str(args.concurrency)]
    argv += ["--pool", args.pool, "--without-heartbeat"]
    for module in args.include:
        argv += ["--include", module]
    create_celery(settings).worker_main(argv)
    return 0


def _beat(args: argparse.Namespace) -> int:
    """Run the scheduler. Run exactly one: two beats schedule every periodic task twice."""
    from app.observability.logging import configure_logging
    from app.worker.celery_app import create_celery

    settings = _validated_settings(need_services=True)
    if settings is None:
        return EXIT_CONFIG
    configure_logging(settings.log_level, settings.effective_log_format)
    beat = create_celery(settings).Beat(loglevel=settings.log_level, schedule=args.schedule_file)
    beat.run()
    return 0


def _purge(_: argparse.Namespace) -> int:
    """Apply every retention rule now; prints what was deleted per table."""
    import asyncio

    from app.lifecycle.tasks import purge_now

    settings = _validated_settings(need_services=False)
    if settings is None:
        return EXIT_CONFIG
    deleted = asyncio.run(purge_now(settings))
    print(json.dumps({"deleted": deleted, "skipped": deleted is None}))
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        say("--workers must be at least 1")
        return EXIT_CONFIG
    return _run_server(args.host, args.port, args.workers)


def _dev(args: argparse.Namespace) -> int:
    """Serve with embedded PostgreSQL and Redis unless real URLs are configured."""
    # Imported here: the embedded servers are a development-only extra.
    from app.dev.services import (
        embedded_postgres,
        embedded_redis,
        prepare_database,
    )
    from app.dev.state import DEV_DATABASE, is_development, published_services, summarised_stop
    from app.dev.welcome import welcome_when_ready
    from app.uploads.dev_clamd import clamd_for_dev

    if os.environ.get("ENVIRONMENT", "development") == "production":
        say("`dev` refuses to run with ENVIRONMENT=production")
        return EXIT_CONFIG
    root = DEVSERVICES_DIR.resolve()
    started: dict[str, str] = {}  # told to the other commands (app.dev.state)
    # A stop signal exits through Python (app.commands.exits): the servers below stop on the way.
    with ExitStack() as services:
        services.enter_context(summarised_stop(started))
        if "DATABASE_URL" not in os.environ:
            admin_url = services.enter_context(embedded_postgres(root))
            owner_url, runtime_url = prepare_database(admin_url, DEV_DATABASE, recreate=False)
            started["DATABASE_OWNER_URL"], started["DATABASE_URL"] = owner_url, runtime_url
            os.environ.update(started)
        if "DATABASE_OWNER_URL" in os.environ:
            status = _migrate(argparse.Namespace(downgrade=False, revision=None))
            if status:
                return status
            if is_development():  # a demo tenant and key, and what to do next
                welcome_when_ready(root, os.environ["DATABASE_OWNER_URL"], args.host, args.port)
        if "REDIS_URL" not in os.environ:
            started["REDIS_URL"] = services.enter_context(embedded_redis(root))
            os.environ["REDIS_URL"] = started["REDIS_URL"]
        if "CLAMD_ADDRESS" not in os.environ and (clamd := clamd_for_dev(services)):
            os.environ["CLAMD_ADDRESS"] = clamd  # loaded with the shipped test signature only
        services.enter_context(published_services(root, started))
        return _run_server(args.host, args.port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, handler, summary in (
        ("serve", _serve, "run the HTTP API"),
        ("dev", _dev, "run the HTTP API on embedded PostgreSQL and Redis"),
    ):
        command = commands.add_parser(name, help=summary)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=8000)
        command.set_defaults(handler=handler)
    serve = commands.choices["serve"]
    serve.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes (metrics are summed)"
    )
    check = commands.add_parser("check-config", help="validate the environment and exit")
    check.set_defaults(handler=_check_config)
    migrate = commands.add_parser("migrate", help="apply database migrations as the owner role")
    migrate.add_argument("--revision", help="target revision (default: head, or -1 to go down)")
    migrate.add_argument("--downgrade", action="store_true", help="migrate down instead of up")
    migrate.set_defaults(handler=_migrate)
    worker = commands.add_parser("worker", help="run a background worker")
    worker.add_argument("--concurrency", type=int, default=2)
    worker.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])
    worker.add_argument(
        "--include", action="append", default=[], help="also load tasks from this module"
    )
    worker.set_defaults(handler=_worker)
    beat = commands.add_parser("beat", help="run the periodic-task scheduler (one only)")
    beat.add_argument("--schedule-file", default="celerybeat-schedule", help="beat's state file")
    beat.set_defaults(handler=_beat)
    add_dlq_commands(commands)
    commands.add_parser("purge", help="delete expired data now").set_defaults(handler=_purge)
    tenant = commands.add_parser("create-tenant", help="create a tenant and print its API key")
    tenant.add_argument("name")
    tenant.set_defaults(handler=_create_tenant)
    add_api_key_commands(commands)
    add_auth_commands(commands)
    add_user_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status (2 and one line when
    the database is unreachable or unmigrated, a setting is missing or a port is busy)."""
    args = _parser().parse_args(argv)
    with dev_services_for(args.command):  # `make dev`'s services when none are configured
        return run_command(args)
