"""Instructions per `/hello` request, counted by callgrind: exact where wall-clock time is not.

    cd <baked project> && PYTHONPATH=src:bench .venv/bin/python <template>/perf/instructions.py

Wall-clock runs on a shared machine move by more than a small change is worth, so each change to
the stack is also checked by what it makes the CPU execute. Each configuration runs in its own
process under `valgrind --tool=callgrind`, with collection off: the process builds the app (bare
FastAPI, the service, or the service without some middleware classes), sends 200 requests
through it in-process as a warm-up (32 concurrent clients on uvloop, the rate limiter talking to
the real Redis), switches collection on, sends BENCH_REQUESTS (1000) more and exits. valgrind's
total divided by that count is one request's cost. No network and no uvicorn: over HTTP, uvicorn
adds the same work to both sides, plus about 0.5 µs per response header (docs/performance.md).
Counts are user-space instructions; system calls are not in them (`strace -c` shows those).

    BENCH_CONFIGS="bare;full;RateLimitMiddleware"   # the rows to run (default: all below)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from app.devservices import embedded_redis
from hello import discard, hello_app, hello_scope, receive_nothing
from http_stack import service_env
from load import ensure_debian_tool
from servers import Services
from starlette.types import ASGIApp

ROOT = Path.cwd() / ".devservices" / "bench"  # run from the baked project (README.md)
LAYERS = (
    "AccessLogMiddleware",
    "RateLimitMiddleware",
    "CorrelationIdMiddleware",
    "SecurityHeadersMiddleware",
    "UnhandledErrorMiddleware",
)
CLIENTS = 32


def _service_app(without: str) -> ASGIApp:
    os.environ["BENCH_WITHOUT"] = without
    from service_app import create_bench_app  # here: the module reads the environment set above

    return create_bench_app()


async def _drive(app: ASGIApp, requests: int) -> None:
    """`requests` GET /hello calls, CLIENTS at a time, straight into the ASGI app."""
    left = [requests]

    async def client() -> None:
        while left[0] > 0:
            left[0] -= 1
            await app(hello_scope(), receive_nothing, discard)

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


def _measured_child(config: str, requests: int) -> None:
    """Inside valgrind: build `config`, warm up, count `requests` requests."""
    import uvloop  # the measured child alone needs it

    app = hello_app() if config == "bare" else _service_app("" if config == "full" else config)
    gc.collect()
    gc.freeze()  # as the service's lifespan does
    loop = uvloop.new_event_loop()
    with Path(os.devnull).open("w") as sink, contextlib.redirect_stdout(sink):
        loop.run_until_complete(_drive(app, 200))
        switch = [os.environ["BENCH_CALLGRIND_CONTROL"], "-i", "on", str(os.getpid())]
        subprocess.run(switch, check=True, capture_output=True)
        loop.run_until_complete(_drive(app, requests))


def _count(valgrind: str, config: str, requests: int, env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        argv = [valgrind, "--tool=callgrind", "--instr-atstart=no"]
        argv += [f"--callgrind-out-file={scratch}/out", sys.executable, __file__, config]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    collected = re.search(r"Collected : (\d+)", done.stderr)
    if collected is None:
        raise SystemExit(f"callgrind printed no total for {config}:\n{done.stderr[-2000:]}")
    return int(collected.group(1)) // requests


def _environment(redis_url: str) -> dict[str, str]:
    """The service's environment under `make bench`; no database is opened for `/hello`."""
    unused = "127.0.0.1:5432/unused"
    svc = Services(
        owner_url=f"postgresql://postgres@{unused}",
        runtime_url=f"postgresql://app_runtime@{unused}",
        redis_url=redis_url,
        name=f"bench_instructions_{os.getpid()}",
    )
    env = service_env(svc, traced=False, otlp_endpoint="http://127.0.0.1:4318")
    bench = str(Path(__file__).resolve().parent)
    env["PYTHONPATH"] = os.pathsep.join([bench, os.environ.get("PYTHONPATH", "")])
    return env


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    configured = os.environ.get("TEST_REDIS_URL")
    if configured:
        yield configured
        return
    with embedded_redis(ROOT, name="instructions") as url:
        yield url


def main() -> int:
    valgrind = ensure_debian_tool("valgrind", "valgrind")
    control = str(Path(valgrind).with_name("callgrind_control"))
    requests = int(os.environ.get("BENCH_REQUESTS", "1000"))
    default = ";".join(["bare", "full", *LAYERS])
    configs = [c for c in os.environ.get("BENCH_CONFIGS", default).split(";") if c]
    print(f"instructions per /hello, in-process, {CLIENTS} concurrent, {requests} counted")
    with _redis() as redis_url:
        env = {**_environment(redis_url), "BENCH_REQUESTS": str(requests)}
        env["BENCH_CALLGRIND_CONTROL"] = control
        full = None
        for config in configs:
            count = _count(valgrind, config, requests, env)
            full = count if config == "full" else full
            label = config if config in ("bare", "full") else f"without {config}"
            share = f"  (the layer: {full - count:,})" if full and config in LAYERS else ""
            print(f"  {label:<36} {count:>9,}{share}", flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1:
        _measured_child(sys.argv[1], int(os.environ["BENCH_REQUESTS"]))
    else:
        raise SystemExit(main())
