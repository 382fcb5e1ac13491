"""The baseline of `make bench`: bare FastAPI doing the service's database I/O, nothing else.

Same engine factory as the service (`app.db.engine.create_engine`: asyncpg, a pool of 10 + 5,
pre-ping, server-side timeouts), same runtime role, and on each measured request the same
transactions and statements the service runs:

- on every request but `/hello/alone`, the rate limiter's round trip: one `EVALSHA` of the
  service's counting script, through the service's `RateCounter` on its own lean connection,
  with the same keys (the client's address, and the API key when the request carries one);
- `GET /notes/{id}`, the warm path: the key's tenant comes from a dict filled by the first
  request (the service's key cache, warm), then ONE transaction: `set_config('app.tenant_id',
  ..., true)` and the same select of every column of the note;
- `GET /cold/notes/{id}`, cold auth: the key checked by the same `verify_api_key` database
  function in a transaction of its own on every request (the service with KEY_CACHE_SECONDS=0),
  then the read's transaction;
- `POST /notes`: one transaction with the idempotent POST's statements: tenant, advisory lock on
  the key, lookup of a completed record, the insert, its outbox task, the tenant's active webhook
  endpoints, and the idempotency record with the response body. After the commit, what the
  service does after its commit: the notes-stats cache entry deleted in Redis, and the outbox
  relay woken, which publishes the row to the broker (the service's own `OutboxRelay`: the
  rule's mechanism, shared as `verify_api_key` is).

What it skips, and the service pays for: every middleware (correlation id, access log and RED
metrics, security headers, the rate limiter's own work around its round trip: identities, limits
and headers, the error middleware, tracing), dependency injection, validation of the input and
of the response, ETags, problem details and transaction retries. `/hello/alone` is bare
`/hello` without the round trip: the baseline of pair 3d, what the whole stack costs a route
that does no I/O of its own.

    python bench/bare_app.py --port 8101    # the service's environment (DATABASE_URL, REDIS_URL)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.auth.api_keys import parse_key
from app.cache.connections import LeanRedis, create_redis
from app.db.engine import create_engine
from app.db.session import Database
from app.db.tenancy import TENANT_SETTING
from app.middleware.rate_limits import RateCounter, RatePolicy, parse_rate
from app.notes.service import STATS_KEY
from app.settings import Settings, get_settings
from app.worker.celery_app import create_celery
from app.worker.outbox import OutboxRelay, celery_publisher

COLUMNS = (
    "id, tenant_id, title, body, format, version, created_at, updated_at, deleted_at, word_count"
)
VERIFY = text("SELECT tenant_id, expires_at FROM verify_api_key(:key_id, :secret_hash)")
SET_TENANT = text("SELECT set_config(:name, :tenant, true)")
READ = text(
    f"SELECT {COLUMNS} FROM notes WHERE id = :id AND tenant_id = :tenant AND deleted_at IS NULL"
)
LOCK = text("SELECT pg_try_advisory_xact_lock(hashtextextended(:name, 0))")
COMPLETED = text(
    "SELECT * FROM idempotency_keys WHERE tenant_id = :tenant AND principal = :principal "
    "AND key = :key AND created_at > now() - interval '24 hours'"
)
INSERT = text(
    "INSERT INTO notes (tenant_id, title, body, format) VALUES (:tenant, :title, :body, :format) "
    f"RETURNING {COLUMNS}"
)
OUTBOX = text(
    "INSERT INTO outbox (id, tenant_id, task_name, args, kwargs, headers) VALUES (:id, :tenant, "
    "'notes.count_words', CAST(:args AS jsonb), '{}', CAST(:headers AS jsonb))"
)
WEBHOOKS = text("SELECT * FROM webhook_endpoints WHERE tenant_id = :tenant AND disabled_at IS NULL")
RECORD = text(
    "INSERT INTO idempotency_keys (tenant_id, principal, key, fingerprint, status_code, headers, "
    "body) VALUES (:tenant, :principal, :key, :fingerprint, 201, CAST(:headers AS jsonb), :body) "
    "ON CONFLICT (tenant_id, principal, key) DO UPDATE SET body = excluded.body"
)
OUT_FIELDS = ("id", "title", "body", "format", "version", "word_count", "created_at", "updated_at")


def _note(row: Any) -> bytes:
    mapping = row._mapping
    # default=str: asyncpg returns its own UUID type, which orjson does not know.
    return orjson.dumps({name: mapping[name] for name in OUT_FIELDS}, default=str)


class Keys:
    """API key → tenant through `verify_api_key`; `warm` remembers answers, as the service's
    key cache does between a key's first request and its expiry."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.known: dict[tuple[uuid.UUID, bytes], uuid.UUID] = {}

    async def verify(self, request: Request) -> tuple[uuid.UUID, uuid.UUID] | None:
        parsed = parse_key(request.headers.get("authorization", "").removeprefix("Bearer "))
        if parsed is None:
            return None
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(VERIFY, {"key_id": parsed[0], "secret_hash": parsed[1]})
            ).first()
        if row is None:
            return None
        self.known[parsed] = row.tenant_id
        return row.tenant_id, parsed[0]

    async def warm(self, request: Request) -> tuple[uuid.UUID, uuid.UUID] | None:
        parsed = parse_key(request.headers.get("authorization", "").removeprefix("Bearer "))
        tenant = self.known.get(parsed) if parsed is not None else None
        if tenant is None or parsed is None:
            return await self.verify(request)
        return tenant, parsed[0]


class Quota:
    """The service's rate-limit round trip, and nothing around it: same script, same keys."""

    def __init__(self, settings: Settings, redis_url: str) -> None:
        self.counter = RateCounter(
            LeanRedis(redis_url), f"{settings.key_prefix}bare:", tracing=False
        )
        self.per_ip = parse_rate("ip", settings.rate_limit_per_ip)
        self.per_key = parse_rate("principal", settings.rate_limit_per_principal)

    async def spend(self, request: Request) -> None:
        client = request.client.host if request.client is not None else "unknown"
        checks: list[tuple[RatePolicy, str]] = [(self.per_ip, client)]
        authorization = request.headers.get("authorization")
        if authorization is not None:
            checks.append((self.per_key, hashlib.sha256(authorization.encode()).hexdigest()[:32]))
        await self.counter.hit(checks)


async def _read(engine: AsyncEngine, tenant: uuid.UUID, note_id: uuid.UUID) -> Response:
    async with engine.begin() as conn:
        await conn.execute(SET_TENANT, {"name": TENANT_SETTING, "tenant": str(tenant)})
        row = (await conn.execute(READ, {"id": note_id, "tenant": tenant})).first()
    if row is None:
        return Response(status_code=404)
    return Response(_note(row), media_type="application/json")


async def _create(
    conn: AsyncConnection, tenant: uuid.UUID, subject: str, request: Request
) -> bytes:
    raw = await request.body()
    payload = orjson.loads(raw)
    key = request.headers["idempotency-key"]
    await conn.execute(SET_TENANT, {"name": TENANT_SETTING, "tenant": str(tenant)})
    await conn.scalar(LOCK, {"name": f"{tenant}:{subject}:{key}"})
    await conn.execute(COMPLETED, {"tenant": tenant, "principal": subject, "key": key})
    values = {
        "tenant": tenant,
        "title": payload["title"],
        "body": payload["body"],
        "format": "text",
    }
    body = _note((await conn.execute(INSERT, values)).one())
    note_id = orjson.loads(body)["id"]
    headers = json.dumps({"app_tenant_id": str(tenant)})
    await conn.execute(
        OUTBOX,
        {"id": uuid.uuid4(), "tenant": tenant, "args": json.dumps([note_id]), "headers": headers},
    )
    await conn.execute(WEBHOOKS, {"tenant": tenant})
    record = {
        "tenant": tenant,
        "principal": subject,
        "key": key,
        "fingerprint": hashlib.sha256(raw).digest(),
        "headers": json.dumps({"content-type": "application/json"}),
        "body": body,
    }
    await conn.execute(RECORD, record)
    return body


def create_bare_app(engine: AsyncEngine, settings: Settings) -> FastAPI:
    assert settings.redis_url is not None  # noqa: S101 - the benchmark's environment sets it
    redis = create_redis(settings.redis_url.get_secret_value())
    quota = Quota(settings, settings.redis_url.get_secret_value())
    relay = OutboxRelay(Database(engine), celery_publisher(create_celery(settings)))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        relaying = asyncio.create_task(relay.run_forever())
        yield
        relaying.cancel()
        await redis.aclose()
        await quota.counter.aclose()

    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    keys = Keys(engine)

    @app.get("/hello")
    async def hello(request: Request) -> dict[str, str]:
        await quota.spend(request)
        return {"hello": "world"}

    @app.get("/hello/alone")
    async def hello_alone() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/notes/{note_id}")
    async def read_warm(note_id: uuid.UUID, request: Request) -> Response:
        await quota.spend(request)
        caller = await keys.warm(request)
        return await _read(engine, caller[0], note_id) if caller else Response(status_code=401)

    @app.get("/cold/notes/{note_id}")
    async def read_cold(note_id: uuid.UUID, request: Request) -> Response:
        await quota.spend(request)
        caller = await keys.verify(request)
        return await _read(engine, caller[0], note_id) if caller else Response(status_code=401)

    @app.post("/notes")
    async def create(request: Request) -> Response:
        await quota.spend(request)
        caller = await keys.warm(request)
        if caller is None:
            return Response(status_code=401)
        async with engine.begin() as conn:
            body = await _create(conn, caller[0], str(caller[1]), request)
        relay.wake.set()
        await redis.delete(f"{settings.key_prefix}{caller[0]}:{STATS_KEY}")
        return Response(body, status_code=201, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="bare FastAPI baseline for make bench")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = get_settings()
    assert settings.database_url is not None  # noqa: S101 - the benchmark's environment sets it
    engine = create_engine(settings.database_url.get_secret_value())
    uvicorn.run(
        create_bare_app(engine, settings),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
