"""Flame graphs of the service and of the bare app under the same wrk load (py-spy, SVG).

    cd <baked project>
    PYTHONPATH=src:bench .venv/bin/python <template>/perf/flame.py OUT_DIR LABEL [PAIR ...]

Starts what `make bench` starts (PostgreSQL and Redis configured or embedded, the service with
tracing off and the bare app, pinned as `make bench` pins them), then for each pair (`read`,
`post`, `hello`; default `read`) drives the service and then the bare app with wrk for
FLAME_SECONDS (10) each while py-spy samples the server: OUT_DIR/LABEL-<pair>-service.svg and
OUT_DIR/LABEL-<pair>-bare.svg, and the req/s of each run on stdout. Needs py-spy on PATH or next
to the interpreter, and ptrace rights over the servers (root, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

from http_stack import NOTE_BODY, _separate_cpus, service_env  # the project's bench/
from load import Request, Result, ensure_wrk, run_wrk
from otlp_sink import OtlpSink
from servers import EMBEDDED_ROOT, cli, create_notes, server, services

SECONDS = int(os.environ.get("FLAME_SECONDS", "10"))


def _py_spy() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))


def _profiled_run(wrk: str, request: Request, pid: int, svg: Path) -> Result:
    """wrk for SECONDS against the server while py-spy records it into `svg`."""
    argv = [_py_spy(), "record", "--pid", str(pid), "--duration", str(SECONDS), "--rate", "200"]
    argv += ["--nonblocking", "--format", "flamegraph", "--output", str(svg)]
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result: list[Result] = []
    driver = threading.Thread(target=lambda: result.append(run_wrk(wrk, request, 32, SECONDS)))
    driver.start()
    driver.join()
    _, err = recorder.communicate(timeout=SECONDS + 60)
    if recorder.returncode:
        raise RuntimeError(f"py-spy failed: {err.decode()[-500:]}")
    return result[0]


def main() -> None:
    out_dir, label, *pairs = sys.argv[1:]
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    wrk = ensure_wrk()
    logs = EMBEDDED_ROOT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with services() as svc, OtlpSink() as sink, ExitStack() as stack:
        env = service_env(svc, sink.endpoint)
        cli(env, "migrate")
        tenant = json.loads(cli(env, "create-tenant", "flame"))
        service = stack.enter_context(server("service_app.py", env, logs / "flame-service.log"))
        # The bare app runs in the service's environment, as in `make bench` (its after-commit I/O).
        bare = stack.enter_context(server("bare_app.py", env, logs / "flame-bare.log"))
        print(_separate_cpus([service, bare], pin=os.environ.get("BENCH_PIN", "1") != "0"))
        note = create_notes(service.port, tenant["api_key"], 20)[0]
        auth = (("Authorization", f"Bearer {tenant['api_key']}"),)
        paths = {
            "read": (f"/api/v1/notes/{note}", f"/notes/{note}", None),
            "post": ("/api/v1/notes", "/notes", NOTE_BODY),
            "hello": ("/hello", "/hello", None),
        }
        for pair in pairs or ["read"]:
            service_path, bare_path, body = paths[pair]
            for name, running, path in (
                ("service", service, service_path),
                ("bare", bare, bare_path),
            ):
                request = Request(f"http://127.0.0.1:{running.port}{path}", auth, post_body=body)
                run_wrk(wrk, request, 32, 2)  # warm-up
                svg = out / f"{label}-{pair}-{name}.svg"
                result = _profiled_run(wrk, request, running.pid, svg)
                print(
                    f"{pair} {name}: {result.rps:.0f} req/s, errors {result.error_count} -> {svg}"
                )


if __name__ == "__main__":
    main()
