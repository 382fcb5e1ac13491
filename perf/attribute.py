"""Who makes the calls: every Python function call (and C call) of N sequential in-process
requests, attributed to the innermost enclosing frame of the service's own code, of the bare
app, or of FastAPI's routing and dependency resolution.

    cd <baked project>
    PYTHONPATH=src:bench .venv/bin/python <template>/perf/attribute.py [post|read|hello] [N] 2>log

A count per request per function, for the service and the bare app: a function's count holds
the library calls it made itself (a statement's `execute` under `repository.insert`), so the
two apps' columns compare like with like. `DETAIL=key,key` (keys as printed) also splits a
function's count by the library function it called into; `TOPN` sets the list length (45).
"<outside>" is the event loop, the drivers' protocol callbacks and the outer middleware.
`sys.setprofile` slows the requests by an order of magnitude: counts, not times.
"""
import asyncio
import json
import os
import sys
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import inprocess as ip
from http_stack import NOTE_BODY, service_env
from servers import cli, services

DETAIL = set(os.environ.get("DETAIL", "").split(","))
MARKERS = ("/src/app/", "/bench/bare_app.py", "starlette/middleware/exceptions.py", "fastapi/routing.py", "fastapi/dependencies/utils.py")

def attributing(counter):
    cache = {}
    def prof(frame, event, arg):
        if event != "call" and event != "c_call":
            return
        f = frame
        below = None
        while f is not None:
            code = f.f_code
            hit = cache.get(code)
            if hit is None:
                fn = code.co_filename
                hit = cache[code] = (f"{fn.split('/src/')[-1].split('/bench/')[-1].split('site-packages/')[-1]}:{code.co_name}:{code.co_firstlineno}" if any(m in fn for m in MARKERS) else "")
            if hit:
                counter[hit] += 1
                if hit in DETAIL and below is not None:
                    counter["  " + hit.split(":")[1] + " > " + below.co_filename.split("site-packages/")[-1] + ":" + below.co_name] += 1
                return
            below = code
            f = f.f_back
        counter["<outside>"] += 1
    return prof

async def main(env, what, n):
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
        def mk(path, app, post):
            def make(_):
                h = [auth] + ([content, (b"idempotency-key", uuid.uuid4().hex.encode())] if post else [])
                s = ip._scope("POST" if post else "GET", path, h); s["app"] = app
                return s, NOTE_BODY.encode() if post else b""
            return make
        paths = {"post": ("/api/v1/notes", "/notes", True), "read": (f"/api/v1/notes/{note}", f"/notes/{note}", False), "hello": ("/hello", "/hello", False)}
        sp, bp, post = paths[what]
        for label, app, path in (("service", service, sp), ("bare", bare, bp)):
            await ip._timed(app, mk(path, app, post), 100)
            c = Counter()
            sys.setprofile(attributing(c))
            await ip._timed(app, mk(path, app, post), n)
            sys.setprofile(None)
            total = sum(c.values())
            print(f"== {label} {what}: {total/n:.0f} calls/request", file=sys.stderr)
            for k, v in c.most_common(int(os.environ.get('TOPN','45'))):
                print(f"  {v/n:7.1f}  {k}", file=sys.stderr)

with services() as svc:
    env = service_env(svc, "http://127.0.0.1:9/")
    cli(env, "migrate")
    asyncio.run(main(env, sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300))
