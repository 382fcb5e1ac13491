"""Who makes the calls: every Python function call (and C call) of N sequential in-process
requests, attributed to the innermost enclosing frame of the service's own code, of the bare
app, or of FastAPI's routing and dependency resolution.

    cd <baked project>
    PYTHONPATH=src:bench .venv/bin/python <template>/perf/attribute.py \\
        [post|read|hello|last] [N] 2>log

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
TOPN = int(os.environ.get("TOPN", "45"))
MARKERS = (
    "/src/app/",
    "/bench/bare_app.py",
    "starlette/middleware/exceptions.py",
    "fastapi/routing.py",
    "fastapi/dependencies/utils.py",
)


def _label(code):
    """`file:function:line` for a frame of marked code, "" for any other."""
    name = code.co_filename
    if not any(marker in name for marker in MARKERS):
        return ""
    short = name.split("/src/")[-1].split("/bench/")[-1].split("site-packages/")[-1]
    return f"{short}:{code.co_name}:{code.co_firstlineno}"


def attributing(counts, details):
    labels = {}

    def profile(frame, event, arg):
        if event not in ("call", "c_call"):
            return
        below = None
        while frame is not None:
            code = frame.f_code
            label = labels.get(code)
            if label is None:
                label = labels[code] = _label(code)
            if label:
                counts[label] += 1
                if label in DETAIL and below is not None:
                    callee = below.co_filename.split("site-packages/")[-1]
                    details[f"{label} > {callee}:{below.co_name}"] += 1
                return
            below = code
            frame = frame.f_back
        counts["<outside>"] += 1

    return profile


def _requests(path, app, post, auth):
    content = (b"content-type", b"application/json")

    def make(_):
        headers = [auth]
        if post:
            headers += [content, (b"idempotency-key", uuid.uuid4().hex.encode())]
        scope = ip._scope("POST" if post else "GET", path, headers)
        scope["app"] = app
        return scope, NOTE_BODY.encode() if post else b""

    return make


def _report(label, counts, details, n):
    print(f"== {label}: {sum(counts.values()) / n:.0f} calls/request", file=sys.stderr)
    for name, count in counts.most_common(TOPN):
        print(f"  {count / n:7.1f}  {name}", file=sys.stderr)
    for name, count in details.most_common(TOPN):
        print(f"  {count / n:7.1f}    {name}", file=sys.stderr)


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
    async with service.router.lifespan_context(service), bare.router.lifespan_context(bare):
        seed = _requests("/api/v1/notes", service, True, auth)(0)
        _, answer = await ip._call(service, *seed)
        note = json.loads(answer)["id"]
        paths = {
            "post": ("/api/v1/notes", "/notes", True),
            "read": (f"/api/v1/notes/{note}", f"/notes/{note}", False),
            "hello": ("/hello", "/hello", False),
            "last": ("/hello/last", "/hello/alone", False),
        }
        service_path, bare_path, post = paths[what]
        for label, app, path in (("service", service, service_path), ("bare", bare, bare_path)):
            make = _requests(path, app, post, auth)
            await ip._timed(app, make, 100)
            counts, details = Counter(), Counter()
            sys.setprofile(attributing(counts, details))
            await ip._timed(app, make, n)
            sys.setprofile(None)
            _report(f"{label} {what}", counts, details, n)


with services() as svc:
    env = service_env(svc, "http://127.0.0.1:9/")
    cli(env, "migrate")
    asyncio.run(main(env, sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300))
