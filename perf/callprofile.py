"""Where a request's CPU goes, counted rather than timed: cProfile over N sequential in-process
reads of the whole service and of the bare app, per request, grouped by package.

    cd <baked project>
    PYTHONPATH=src:bench .venv/bin/python <template>/perf/callprofile.py \\
        [read|hello|post] [traced] >log

`traced`: the service with tracing at its production default (10 % of requests sampled); only
this thread is profiled, so the exporter's own thread is not counted.

Function calls per request do not depend on the machine's load, so a change that removes calls
shows here even while the machine is busy; the tottime column is inflated by cProfile's own
cost per call, so compare it between the two apps, not with `make bench`.
"""

import asyncio
import cProfile
import json
import os
import pstats
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import inprocess as ip
from http_stack import NOTE_BODY, service_env
from servers import cli, services

COUNT = int(os.environ.get("COUNT", "1000"))
GROUPS = (
    "app",
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "asyncpg",
    "structlog",
    "redis",
    "opentelemetry",
    "asyncio",
    "contextlib",
    "uvicorn",
    "bench",
)


def _group(filename: str) -> str:
    for name in GROUPS:
        if f"/{name}/" in filename or filename.endswith(f"/{name}.py"):
            return name
    return "other" if filename != "~" else "builtins"


def _report(label: str, stats: pstats.Stats, top: int) -> None:
    raw = stats.stats  # type: ignore[attr-defined]
    calls = sum(v[1] for v in raw.values())
    total = sum(v[2] for v in raw.values())
    print(f"\n== {label}: {calls / COUNT:.0f} calls/request, {total / COUNT * 1e6:.0f} us/request")
    by_group: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    for (filename, _, _), (_, ncalls, tottime, _, _) in raw.items():
        entry = by_group[_group(filename)]
        entry[0] += ncalls
        entry[1] += tottime
    for name, (ncalls, tottime) in sorted(by_group.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:14} {ncalls / COUNT:7.1f} calls  {tottime / COUNT * 1e6:7.1f} us")
    rows = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    for (filename, line, func), (_, ncalls, tottime, _cumulative, _) in rows:
        where = "/".join(filename.split("/")[-2:])
        print(
            f"    {tottime / COUNT * 1e6:6.1f} us {ncalls / COUNT:5.1f}x  {func} ({where}:{line})"
        )


async def _profiled(app, make, label: str) -> None:
    await ip._timed(app, make, 200)
    profile = cProfile.Profile()
    profile.enable()
    await ip._timed(app, make, COUNT)
    profile.disable()
    _report(label, pstats.Stats(profile), int(os.environ.get("TOP", "25")))
    if os.environ.get("DUMP"):
        profile.dump_stats(f"{os.environ['DUMP']}-{label.replace(' ', '-')}.prof")


async def main(env, what: str) -> None:
    os.environ.update(env)
    from app.db.engine import create_engine
    from app.settings import get_settings
    from bare_app import create_bare_app
    from service_app import create_bench_app

    service = create_bench_app()
    bare = create_bare_app(create_engine(env["DATABASE_URL"]), get_settings())
    key = json.loads(cli(env, "create-tenant", "bench"))["api_key"]
    auth = (b"authorization", f"Bearer {key}".encode())
    content = (b"content-type", b"application/json")
    async with service.router.lifespan_context(service), bare.router.lifespan_context(bare):
        seed = ip._scope("POST", "/api/v1/notes", [auth, content, (b"idempotency-key", b"seed")])
        _, answer = await ip._call(service, seed, NOTE_BODY.encode())
        note = json.loads(answer)["id"]
        paths = {
            "read": (f"/api/v1/notes/{note}", f"/notes/{note}"),
            "hello": ("/hello", "/hello"),
            "post": ("/api/v1/notes", "/notes"),
        }
        service_path, bare_path = paths[what]
        body = NOTE_BODY.encode() if what == "post" else b""
        runs = iter(range(10**9))

        def get(path, app):
            def make(_):
                headers = [auth]
                if body:
                    headers += [content, (b"idempotency-key", f"k{next(runs)}".encode())]
                scope = ip._scope("POST" if body else "GET", path, headers)
                scope["app"] = app
                return scope, body

            return make

        await _profiled(service, get(service_path, service), f"service {what}")
        await _profiled(bare, get(bare_path, bare), f"bare {what}")


with services() as svc:
    env = service_env(svc, "http://127.0.0.1:9/", traced="traced" in sys.argv[2:])
    cli(env, "migrate")
    asyncio.run(main(env, sys.argv[1] if len(sys.argv) > 1 else "read"))
