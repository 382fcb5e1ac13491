"""Instructions per read (`GET /api/v1/notes/{id}`, key cache warm), counted by callgrind.

    cd <baked project>
    PYTHONPATH=src:bench .venv/bin/python <template>/perf/read_instructions.py [CONFIG ...]

CONFIG is `bare` (bench/bare_app.py's `/notes/{id}`), `full` (the service as `make bench` runs
it) or `without:<Middleware>[,<Middleware>]` (the service with BENCH_WITHOUT); default `bare
full`. The parent migrates a throwaway database (PostgreSQL and Redis configured or embedded,
as `make bench`), creates a tenant and a note, then runs each configuration in its own process
under `valgrind --tool=callgrind`: the process builds the app, sends 300 reads as a warm-up,
switches collection on, sends READ_REQUESTS (400) more, one after another, and exits. The
database and Redis are other processes, so their work is not counted: what is counted is the
Python process's own user-space instructions, which wall-clock runs on a 2-vCPU VM cannot
resolve to better than ±5 %. `READ_KIND=post` counts the idempotent POST instead (a fresh
`Idempotency-Key` each). `perf/instructions.py` does the same for `/hello`. `READ_SETUP`
holds Python run in each child before it builds the app (an ablation: patch a function out).
`READ_CLIENTS` (1) sends them from that many callers at once: 32, as wrk's connections, makes
requests queue for the pool's 15 connections as they do under `make bench`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import inprocess as ip
from http_stack import NOTE_BODY, service_env
from load import ensure_debian_tool
from servers import cli, services


def _build(config: str, env: dict[str, str]):  # type: ignore[no-untyped-def]
    os.environ.update(env)
    if config == "bare":
        from app.db.engine import create_engine
        from app.settings import get_settings
        from bare_app import create_bare_app

        return create_bare_app(create_engine(env["DATABASE_URL"]), get_settings())
    os.environ["BENCH_WITHOUT"] = config.removeprefix("without:") if config != "full" else ""
    from service_app import create_bench_app

    return create_bench_app()


def _stop_relay_timers() -> None:
    """Both apps' outbox relays poll by wall-clock time, which valgrind stretches 50 times: their
    polls would land in the count in proportion to how slowly it ran. A read commits no row, so
    the relay has nothing to do in it."""
    import app.worker.outbox as outbox

    async def idle(self: object) -> None:
        await asyncio.Event().wait()

    outbox.OutboxRelay.run_forever = idle  # type: ignore[method-assign]


async def _child(config: str, requests: int) -> None:
    import uvloop

    env = json.loads(os.environ["READ_ENV"])
    os.environ.update(env)
    _stop_relay_timers()
    exec(os.environ.get("READ_SETUP", ""), {})  # an ablation: code run before the app is built
    app = _build(config, env)
    auth = (b"authorization", f"Bearer {os.environ['READ_KEY']}".encode())
    note = os.environ["READ_NOTE"]
    posting = os.environ.get("READ_KIND") == "post"
    if posting:
        path = "/notes" if config == "bare" else "/api/v1/notes"
    else:
        path = f"/notes/{note}" if config == "bare" else f"/api/v1/notes/{note}"
    content = (b"content-type", b"application/json")

    async def reads(count: int) -> None:
        for _ in range(count):
            if posting:  # a fresh Idempotency-Key each time, as make bench's POST pair
                key = (b"idempotency-key", uuid.uuid4().hex.encode())
                scope = ip._scope("POST", path, [auth, content, key])
                status, answer = await ip._call(app, scope, NOTE_BODY.encode())
            else:
                status, answer = await ip._call(app, ip._scope("GET", path, [auth]))
            if status >= 300:
                raise RuntimeError(f"{config}: {status} {answer[:200]!r}")

    clients = int(os.environ.get("READ_CLIENTS", "1"))

    async def concurrently(count: int) -> None:  # `clients` callers at once, as wrk's connections
        await asyncio.gather(*(reads(count // clients) for _ in range(clients)))

    del uvloop
    async with app.router.lifespan_context(app):
        await concurrently(300)
        gc.collect()
        switch = [os.environ["READ_CALLGRIND_CONTROL"], "-i", "on", str(os.getpid())]
        subprocess.run(switch, check=True, capture_output=True)
        await concurrently(requests)
        subprocess.run([*switch[:2], "off", str(os.getpid())], check=True, capture_output=True)


def _count(valgrind: str, config: str, requests: int, env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        argv = [valgrind, "--tool=callgrind", "--instr-atstart=no"]
        argv += [f"--callgrind-out-file={scratch}/out", sys.executable, __file__, "--child", config]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{config} failed:\n{done.stderr[-3000:]}")
        keep = os.environ.get("READ_KEEP")
        if keep:  # callgrind_annotate input, per configuration
            Path(keep).mkdir(parents=True, exist_ok=True)
            Path(f"{scratch}/out").rename(Path(keep) / f"{config.replace(':', '-')}.out")
    collected = re.search(r"Collected : (\d+)", done.stderr)
    if collected is None:
        raise SystemExit(f"callgrind printed no total for {config}:\n{done.stderr[-2000:]}")
    return int(collected.group(1)) // requests


def main() -> int:
    valgrind = ensure_debian_tool("valgrind", "valgrind")
    configs = sys.argv[1:] or ["bare", "full"]
    requests = int(os.environ.get("READ_REQUESTS", "400"))
    with services() as svc:
        env = service_env(svc, "http://127.0.0.1:9/")
        cli(env, "migrate")
        key = json.loads(cli(env, "create-tenant", "instructions"))["api_key"]
        note = asyncio.run(_seed(env, key))
        child_env = {**env, "READ_ENV": json.dumps(env), "READ_KEY": key, "READ_NOTE": note}
        child_env["READ_CALLGRIND_CONTROL"] = str(Path(valgrind).with_name("callgrind_control"))
        child_env["READ_REQUESTS"] = str(requests)
        kind = os.environ.get("READ_KIND", "read")
        print(f"instructions per {kind}, in-process, sequential, {requests} counted", flush=True)
        counts = {}
        for config in configs:
            counts[config] = _count(valgrind, config, requests, child_env)
            versus = ""
            if "full" in counts and config != "full":
                versus = f"  (full - this: {counts['full'] - counts[config]:+,})"
            print(f"  {config:<48} {counts[config]:>11,}{versus}", flush=True)
        if "bare" in counts and "full" in counts:
            print(f"  bare / full: {counts['bare'] / counts['full']:.3f}")
    return 0


async def _seed(env: dict[str, str], key: str) -> str:
    app = _build("full", env)
    auth = (b"authorization", f"Bearer {key}".encode())
    headers = [auth, (b"content-type", b"application/json"), (b"idempotency-key", b"seed")]
    async with app.router.lifespan_context(app):
        status, answer = await ip._call(
            app, ip._scope("POST", "/api/v1/notes", headers), NOTE_BODY.encode()
        )
    if status != 201:
        raise SystemExit(f"seeding the note: {status} {answer[:300]!r}")
    return str(json.loads(answer)["id"])


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        import uvloop

        uvloop.run(_child(sys.argv[2], int(os.environ["READ_REQUESTS"])))
    else:
        raise SystemExit(main())
