"""CPU per request of the read and the idempotent POST, service against bare app, in-process.

    cd <baked project>
    PYTHONPATH=src:bench .venv/bin/python <template>/perf/inprocess.py [read|post|hello ...] >log

No HTTP server: each request is one direct ASGI call, sequential, against real PostgreSQL and
Redis (configured or embedded, as `make bench`). The CPU time per request (`time.process_time`)
of the service minus the bare app's is what the stack costs on that request, without the noise
of wrk and scheduling; `INPROCESS_PROFILE=<file.prof>` also writes a cProfile of the service's
run (read it with `python -m pstats`). `INPROCESS_REQUESTS` (2000) sets the count;
`INPROCESS_NO_RELAY=1` leaves the service's outbox relay out. The figures go to stderr, the
service's log lines to stdout.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from http_stack import NOTE_BODY, service_env  # the project's bench/
from servers import cli, services
from starlette.types import ASGIApp, Message

REQUESTS = int(os.environ.get("INPROCESS_REQUESTS", "2000"))


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _call(app: ASGIApp, scope: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = sent[0]["status"]
    return status, b"".join(m.get("body", b"") for m in sent[1:])


Make = Callable[[int], tuple[dict[str, Any], bytes]]


async def _timed(app: ASGIApp, make: Make, count: int) -> float:
    cpu = time.process_time()
    for number in range(count):
        scope, body = make(number)
        status, answer = await _call(app, scope, body)
        if status >= 300:
            raise RuntimeError(f"{scope['method']} {scope['path']}: {status} {answer[:200]!r}")
    return (time.process_time() - cpu) / count


async def _compare(pairs: dict[str, tuple[ASGIApp, Make, ASGIApp, Make]]) -> None:
    profile = os.environ.get("INPROCESS_PROFILE")
    for name, (service, service_make, bare, bare_make) in pairs.items():
        await _timed(service, service_make, 200)
        await _timed(bare, bare_make, 200)
        rounds = []
        for _ in range(5):
            rounds.append(
                (
                    await _timed(service, service_make, REQUESTS // 5),
                    await _timed(bare, bare_make, REQUESTS // 5),
                )
            )
        s = statistics.median(r[0] for r in rounds) * 1e6
        b = statistics.median(r[1] for r in rounds) * 1e6
        print(
            f"{name}: service {s:7.1f} us/req  bare {b:7.1f} us/req  "
            f"ratio {b / s:.2f}  stack +{s - b:.1f} us",
            file=sys.stderr,
            flush=True,
        )
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await _timed(service, service_make, REQUESTS // 2)
            profiler.disable()
            profiler.dump_stats(f"{profile}.{name}")


async def _main(env: dict[str, str], which: list[str]) -> None:
    os.environ.update(env)
    from app.db.engine import create_engine
    from bare_app import create_bare_app
    from service_app import create_bench_app

    if os.environ.get("INPROCESS_NO_RELAY"):  # ablation: what the in-process relay costs
        import app.main as service_main

        def no_relay(app: Any, settings: Any) -> None:
            app.state.outbox_relay = None

        service_main._start_outbox_relay = no_relay  # type: ignore[assignment]
    service = create_bench_app()
    from app.settings import get_settings

    bare = create_bare_app(create_engine(env["DATABASE_URL"]), get_settings())
    key = json.loads(cli(env, "create-tenant", "bench"))["api_key"]
    auth = (b"authorization", f"Bearer {key}".encode())
    content = (b"content-type", b"application/json")
    async with service.router.lifespan_context(service), bare.router.lifespan_context(bare):
        seed = _scope("POST", "/api/v1/notes", [auth, content, (b"idempotency-key", b"seed")])
        status, answer = await _call(service, seed, NOTE_BODY.encode())
        note = json.loads(answer)["id"]

        def get(path: str) -> Make:
            return lambda _: (_scope("GET", path, [auth]), b"")

        def post(path: str) -> Make:
            def make(_: int) -> tuple[dict[str, Any], bytes]:
                key = (b"idempotency-key", uuid.uuid4().hex.encode())
                return _scope("POST", path, [auth, content, key]), NOTE_BODY.encode()

            return make

        pairs = {
            "read": (service, get(f"/api/v1/notes/{note}"), bare, get(f"/notes/{note}")),
            "post": (service, post("/api/v1/notes"), bare, post("/notes")),
            "hello": (service, get("/hello"), bare, get("/hello")),
        }
        await _compare({name: pairs[name] for name in which})


def main() -> int:
    which = sys.argv[1:] or ["read", "post", "hello"]
    with services() as svc:
        env = service_env(svc, "http://127.0.0.1:9/")
        cli(env, "migrate")
        asyncio.run(_main(env, which))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
