"""The baseline of `make bench`: bare FastAPI doing the service's database work, nothing else.

Same engine factory (`app.db.engine.create_engine`: asyncpg, the same pool size, pre-ping and
server-side timeouts), same runtime role, same SQL: the API key is resolved by the same
`authenticate_api_key` function in its own transaction, then the read (or the insert) runs in a
transaction scoped with `set_config('app.tenant_id', ..., true)`, as `Database.run` does.

What it skips, on purpose: every middleware (correlation id, access log and RED metrics, security
headers, rate limiting and its Redis round trip, the error middleware, tracing), FastAPI's
dependency injection and response-model validation, ETags, problem-details error mapping,
transaction retries, the idempotency record and the outbox. A missing note is a bare 404.

    python bench/bare_app.py --port 8101    # DATABASE_URL: the runtime role's URL
"""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.auth.api_keys import parse_key
from app.db.engine import create_engine
from app.db.tenancy import TENANT_SETTING

AUTHENTICATE = text("SELECT authenticate_api_key(:key_id, :secret_hash)")
SET_TENANT = text("SELECT set_config(:name, :tenant, true)")
READ = text(
    "SELECT id, title, body, version, created_at, updated_at FROM notes "
    "WHERE id = :id AND tenant_id = :tenant AND deleted_at IS NULL"
)
INSERT = text(
    "INSERT INTO notes (tenant_id, title, body) VALUES (:tenant, :title, :body) "
    "RETURNING id, title, body, version, created_at, updated_at"
)


def _row(row: Any) -> dict[str, object]:
    note: dict[str, object] = dict(row._mapping)
    for field in ("id", "created_at", "updated_at"):
        note[field] = str(note[field])
    return note


async def _tenant(engine: AsyncEngine, request: Request) -> uuid.UUID | None:
    """The caller's tenant, by the same database function the service uses."""
    header = request.headers.get("authorization", "")
    parsed = parse_key(header.removeprefix("Bearer "))
    if parsed is None:
        return None
    async with engine.begin() as conn:
        tenant: uuid.UUID | None = await conn.scalar(
            AUTHENTICATE, {"key_id": parsed[0], "secret_hash": parsed[1]}
        )
    return tenant


async def _scoped(conn: AsyncConnection, tenant: uuid.UUID) -> None:
    await conn.execute(SET_TENANT, {"name": TENANT_SETTING, "tenant": str(tenant)})


def create_bare_app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/notes/{note_id}")
    async def read(note_id: uuid.UUID, request: Request) -> JSONResponse:
        tenant = await _tenant(engine, request)
        if tenant is None:
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        async with engine.begin() as conn:
            await _scoped(conn, tenant)
            row = (await conn.execute(READ, {"id": note_id, "tenant": tenant})).first()
        if row is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return JSONResponse(_row(row))

    @app.post("/notes")
    async def insert(request: Request) -> JSONResponse:
        tenant = await _tenant(engine, request)
        if tenant is None:
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        payload = await request.json()
        async with engine.begin() as conn:
            await _scoped(conn, tenant)
            values = {"tenant": tenant, "title": payload["title"], "body": payload.get("body", "")}
            row = (await conn.execute(INSERT, values)).one()
        return JSONResponse(_row(row), status_code=201)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="bare FastAPI baseline for make bench")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    engine = create_engine(os.environ["DATABASE_URL"])
    uvicorn.run(
        create_bare_app(engine),
        host="127.0.0.1",
        port=args.port,
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
