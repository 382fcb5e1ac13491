"""Where the read's stack cost sits: the whole service, without two layers, without any
middleware, and the bare app, in-process (CPU µs per sequential request, median of rounds).

    cd <baked project>
    PYTHONPATH=src:bench .venv/bin/python <template>/perf/read_split.py >log

"router" is the service's route table alone (FastAPI's exit-stack wrapper around it, no
middleware): router minus bare is the read path (dependencies, transaction wrappers, response),
whole minus router the middleware. `ROUNDS` (7) of 600 requests each.
"""

import asyncio
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import inprocess as ip
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from http_stack import NOTE_BODY, service_env
from servers import cli, services


async def main(env):
    os.environ.update(env)
    from app.db.engine import create_engine
    from app.settings import get_settings
    from bare_app import create_bare_app
    from service_app import create_bench_app

    service = create_bench_app()
    os.environ["BENCH_WITHOUT"] = "RateLimitMiddleware"
    no_rl = create_bench_app()
    os.environ["BENCH_WITHOUT"] = "AccessLogMiddleware"
    no_log = create_bench_app()
    os.environ["BENCH_WITHOUT"] = ""
    bare = create_bare_app(create_engine(env["DATABASE_URL"]), get_settings())
    key = json.loads(cli(env, "create-tenant", "bench"))["api_key"]
    auth = (b"authorization", f"Bearer {key}".encode())
    content = (b"content-type", b"application/json")
    async with (
        service.router.lifespan_context(service),
        bare.router.lifespan_context(bare),
        no_rl.router.lifespan_context(no_rl),
        no_log.router.lifespan_context(no_log),
    ):
        seed = ip._scope("POST", "/api/v1/notes", [auth, content, (b"idempotency-key", b"seed")])
        _, answer = await ip._call(service, seed, NOTE_BODY.encode())
        note = json.loads(answer)["id"]

        def get(path, a=service):
            def make(_):
                s = ip._scope("GET", path, [auth])
                s["app"] = a
                return s, b""

            return make

        def bget(path):
            return lambda _: (ip._scope("GET", path, [auth]), b"")

        which = {
            "full": (service, get(f"/api/v1/notes/{note}")),
            "no_rl": (no_rl, get(f"/api/v1/notes/{note}", no_rl)),
            "no_log": (no_log, get(f"/api/v1/notes/{note}", no_log)),
            "router": (AsyncExitStackMiddleware(service.router), get(f"/api/v1/notes/{note}")),
            "bare": (bare, bget(f"/notes/{note}")),
        }
        for app, mk in which.values():
            await ip._timed(app, mk, 300)
        res = {k: [] for k in which}
        for _ in range(int(os.environ.get("ROUNDS", "7"))):
            for k, (app, mk) in which.items():
                res[k].append(await ip._timed(app, mk, 600) * 1e6)
        for k, v in res.items():
            print(f"{k}: {statistics.median(v):7.1f} us  (min {min(v):.1f})", file=sys.stderr)


with services() as svc:
    env = service_env(svc, "http://127.0.0.1:9/")
    cli(env, "migrate")
    asyncio.run(main(env))
