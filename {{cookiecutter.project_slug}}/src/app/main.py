"""Application factory: lifespan, middleware order, routers and error handlers, nothing else."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI
from redis.asyncio import Redis

# Registers every table: ORM foreign keys resolve by table name at the first query.
import app.db.models  # noqa: F401
from app.auth.key_changes import start_key_change_listener, stop_key_change_listener
from app.auth.principal import ApiKeyCache
from app.auth.router import router as auth_router
from app.cache.connections import create_redis, ping_redis
from app.db.engine import DatabaseTimeouts, create_engine
from app.db.errors import install_database_error_handlers
from app.db.session import Database
from app.health.dependencies import Dependency
from app.health.router import router as health_router
from app.health.schema import check_database_schema
from app.http.api_contract import install_problem_documentation
from app.http.api_docs import install_api_docs
from app.http.errors import install_error_handlers
from app.http.home_page import install_home_page
from app.http.routes import mount_router
from app.middleware.stack import install_middleware
from app.notes.router import install_notes
from app.observability.logging import configure_logging, get_logger
from app.observability.metrics import POOLS, install_metrics_endpoint
from app.observability.telemetry import configure_tracing, shutdown_tracing
from app.settings import Settings, get_settings, require_service_urls
from app.uploads.router import install_uploads
from app.webhooks.router import router as webhooks_router
from app.worker.celery_app import create_celery
from app.worker.outbox import OutboxRelay, celery_publisher

log = get_logger("app.lifespan")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    require_service_urls(settings)
    assert settings.database_url is not None  # noqa: S101 - checked just above
    assert settings.redis_url is not None  # noqa: S101 - checked just above
    timeouts = DatabaseTimeouts(
        statement_ms=settings.db_statement_timeout_ms,
        lock_ms=settings.db_lock_timeout_ms,
        idle_in_transaction_ms=settings.db_idle_in_transaction_timeout_ms,
    )
    engine = create_engine(
        settings.database_url.get_secret_value(), timeouts, pool_size=settings.db_pool_size
    )
    redis: Redis = app.state.redis
    app.state.database = Database(engine, max_attempts=settings.db_max_transaction_attempts)
    POOLS.pools.append(engine.sync_engine.pool)
    app.state.dependencies = [
        # One query: the database answers and its schema is at this code's revision.
        Dependency("database", critical=True, check=lambda: check_database_schema(engine)),
        Dependency("redis", critical=False, check=lambda: ping_redis(redis)),
    ]
    relay_task = _start_outbox_relay(app, settings)
    # Revoked and rotated keys leave the key cache as their notice lands (docs/tenancy.md).
    cache = app.state.api_key_cache
    key_changes = (
        start_key_change_listener(redis, settings.key_prefix, cache) if cache is not None else None
    )
    app.state.key_change_listener = key_changes
    log.info("startup", environment=settings.environment)
    try:
        with collector_tuned_for_serving():
            yield
    finally:
        if relay_task is not None:
            relay_task.cancel()
        await stop_key_change_listener(key_changes)
        POOLS.pools.remove(engine.sync_engine.pool)
        await redis.aclose()
        if app.state.rate_counter is not None:
            await app.state.rate_counter.aclose()
        await engine.dispose()
        log.info("shutdown")
        shutdown_tracing()


# Container objects allocated, net, between two collections of the youngest generation (Python's
# default: 700). See `collector_tuned_for_serving`.
YOUNG_COLLECTION_THRESHOLD = 10_000


@contextmanager
def collector_tuned_for_serving() -> Iterator[None]:
    """The garbage collector set for serving, its settings as they were once the app stops.

    Everything alive at start-up (modules, routes, settings, the ORM's mappers) lives as long as
    the process: frozen out of the collector's generations, a full collection no longer walks it
    while requests wait (that was most of /hello's p99). Each young collection walks the objects
    of every request in flight, so under load the default threshold of 700 made a collection
    every few hundred microseconds: 99,000 instructions per read at 32 requests in flight, 4 % of
    it; at 10,000, about 15,000 (docs/performance.md). Reference counting frees a request's
    objects anyway; the collector only finds cycles, which wait a little longer.
    """
    gc.collect()
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, before[1], before[2])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _start_outbox_relay(app: FastAPI, settings: Settings) -> asyncio.Task[None] | None:
    """Relay the outbox from this process; without a broker, rows wait for one (never lost)."""
    app.state.outbox_relay = None
    if settings.broker_url is None:
        return None
    relay = OutboxRelay(
        app.state.database,
        celery_publisher(create_celery(settings)),
        redeliver_after=float(settings.outbox_redelivery_timeout),
    )
    app.state.outbox_relay = relay
    return asyncio.create_task(relay.run_forever(), name="outbox-relay")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI application. Settings are validated here, before any port is bound."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.effective_log_format)
    configure_tracing(settings)
    app = FastAPI(
        title=settings.service_name,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        # FastAPI's native telemetry would add a second server span, spans per dependency and
        # endpoint, and would sit inside the stack; app.middleware.tracing makes the one server
        # span, outermost. (It used to switch itself off on seeing OpenTelemetry's middleware.)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    # KEY_CACHE_SECONDS=0: no cache, every request verifies its key (docs/tenancy.md).
    seconds = settings.key_cache_seconds
    app.state.api_key_cache = ApiKeyCache(ttl=seconds) if seconds > 0 else None
    # Created here (it connects lazily) because the rate-limit middleware needs it at install.
    app.state.redis = (
        create_redis(settings.redis_url.get_secret_value()) if settings.redis_url else None
    )
    install_middleware(app, settings, app.state.redis)
    install_error_handlers(app)
    install_database_error_handlers(app)
    # The features first: a request pays for each route tried before its own (performance.md),
    # and the API comes under load where probes and sign-ins come seldom.
    install_notes(app, settings)
    mount_router(app, webhooks_router)
    install_uploads(app, settings)
    mount_router(app, health_router)
    mount_router(app, auth_router)
    install_metrics_endpoint(app, settings)
    install_problem_documentation(app)
    if settings.docs_enabled:
        install_api_docs(app)
    install_home_page(app, settings)
    return app
