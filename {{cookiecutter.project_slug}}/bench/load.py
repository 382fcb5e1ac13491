"""wrk, the load generator of `make bench`: installed from Debian when missing, driven on loopback.

Each run gets a generated Lua script whose `done()` prints one machine-readable line, so nothing
depends on the layout of wrk's human report. wrk counts as errors: connect, read and write socket
errors, timeouts (no answer within wrk's default 2 s), and responses with a status of 400 or more.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, math.floor(latency:percentile(50)),
    math.floor(latency:percentile(99)), e.connect, e.read, e.write, e.status, e.timeout))
end
"""
# Every request gets its own Idempotency-Key: thread id and a counter under a per-run prefix.
_UNIQUE_POST = """
local counter = 0
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
request = function()
  counter = counter + 1
  local headers = {}
  for name, value in pairs(wrk.headers) do headers[name] = value end
  headers["Idempotency-Key"] = string.format("%s-%d-%d", RUN, tid or 0, counter)
  return wrk.format("POST", nil, headers, wrk.body)
end
"""


@dataclass(frozen=True)
class Request:
    """What wrk sends: a URL, optional headers, and a JSON body for a unique-key POST."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    post_body: str | None = None


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    cpu_per_request: float | None = None  # the server's CPU seconds, when measured

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def ensure_debian_tool(command: str, package: str) -> str:
    """The path of `command`, installing Debian's `package` first if it is missing."""
    found = shutil.which(command)
    if found:
        return found
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=300"]
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise SystemExit(f"{command} is missing: install it (apt-get install {package})")
        apt = ["sudo", *apt]
    print(f"installing {package} from Debian ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run([*apt, "install", "-y", package], env=env, check=False).returncode:
        subprocess.run([*apt, "update"], env=env, check=True)
        subprocess.run([*apt, "install", "-y", package], env=env, check=True)
    found = shutil.which(command)
    if found is None:
        raise SystemExit(f"{command} is still missing after apt-get install {package}")
    return found


def ensure_wrk() -> str:
    """The path of wrk, installing Debian's package first if it is missing."""
    return ensure_debian_tool("wrk", "wrk")


def _script(request: Request) -> str:
    lines = [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in request.headers]
    if request.post_body is not None:
        lines += [
            'wrk.method = "POST"',
            'wrk.headers["Content-Type"] = "application/json"',
            f"wrk.body = {json.dumps(request.post_body)}",
            f'RUN = "{uuid.uuid4().hex}"',
            _UNIQUE_POST,
        ]
    return "\n".join([*lines, _DONE])


def run_wrk(
    wrk: str, request: Request, connections: int, seconds: float, threads: int = 1
) -> Result:
    """One wrk run; raises when wrk fails or prints no summary."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_script(request))
    try:
        # wrk's default --timeout (2 s): an answer slower than that counts as a timeout.
        argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
        completed = subprocess.run(
            [*argv, "-s", script.name, request.url],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        Path(script.name).unlink()
    lines = [line for line in completed.stdout.splitlines() if line.startswith("BENCH ")]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{completed.stdout}\n{completed.stderr}")
    raw = json.loads(lines[-1].removeprefix("BENCH "))
    errors = {name: int(raw[name]) for name in ("connect", "read", "write", "status", "timeout")}
    return Result(
        requests=int(raw["requests"]),
        seconds=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=errors,
    )
