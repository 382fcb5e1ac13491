"""Benchmark: the full production stack against bare FastAPI doing the same I/O, same run:
    make bench      # embedded PostgreSQL and Redis, or TEST_DATABASE_URL / TEST_REDIS_URL

Starts PostgreSQL and Redis (configured or embedded), migrates, creates a tenant with an API key
and some notes through the console script and the API, then serves four processes on loopback,
one uvicorn worker each: the service with tracing off, the same with its API key cache off
(KEY_CACHE_SECONDS=0), the service with tracing at its production default (10 % parent-based
sampling, OTLP/HTTP export to a local sink that discards), and the bare app (`bench/bare_app.py`),
which does the service's I/O (its transactions, the rate limiter's Redis round trip), no more.
wrk drives each pair interleaved (service, bare, service, bare ...) and the ratio is the median
of the per-round ratios. Logs are JSON, in `.devservices/bench/logs/`.

Settings (environment): BENCH_ROUNDS (7), BENCH_DURATION seconds per run (4),
BENCH_CONNECTIONS (32), BENCH_LOAD_CONNECTIONS (256), BENCH_LOAD_DURATION seconds (10),
BENCH_NOTES (200), BENCH_STRICT=1 to exit non-zero when a goal is missed, BENCH_ONLY=1a,3a to
run some pairs, BENCH_WITHOUT=RateLimitMiddleware,... to serve the service without those
middleware classes, BENCH_PIN=0 to leave every process free to run on any CPU. Never a test.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import random
import secrets
import sys
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from load import Request, Result, ensure_wrk, run_wrk
from otlp_sink import OtlpSink
from report import PairOutcome, print_load, print_pair, print_verdict
from servers import (
    EMBEDDED_ROOT,
    Running,
    Services,
    cli,
    create_notes,
    pin_to_cpus,
    server,
    services,
)

LOG_DIR = EMBEDDED_ROOT / "logs"  # under .devservices/, which git ignores
NOTE_BODY = json.dumps({"title": "benchmark", "body": "written by make bench"})


@dataclass(frozen=True)
class Config:
    rounds: int
    duration: float
    connections: int
    load_connections: int
    load_duration: float
    notes: int
    strict: bool
    pin: bool

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ.get
        return cls(
            # Many short rounds rather than a few long ones: this machine's speed drifts over
            # tens of seconds, and a ratio is only as good as the pairing of its two runs.
            rounds=int(env("BENCH_ROUNDS", "7")),
            duration=float(env("BENCH_DURATION", "4")),
            connections=int(env("BENCH_CONNECTIONS", "32")),
            load_connections=int(env("BENCH_LOAD_CONNECTIONS", "256")),
            load_duration=float(env("BENCH_LOAD_DURATION", "10")),
            notes=int(env("BENCH_NOTES", "200")),
            strict=env("BENCH_STRICT", "") == "1",
            pin=env("BENCH_PIN", "1") != "0",
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    goal: float | None
    service: str  # "plain" (tracing off), "nocache" (no API key cache) or "traced"
    service_request: Request
    bare_request: Request


def service_env(
    svc: Services, otlp_endpoint: str, traced: bool = False, key_cache: bool = True
) -> dict[str, str]:
    """Production settings, on loopback; limits high enough that wrk is never throttled."""
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "DATABASE_OWNER_URL": svc.owner_url,
        "DATABASE_URL": svc.runtime_url,
        "REDIS_URL": svc.redis_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "SESSION_SIGNING_KEYS": f"bench:{secrets.token_urlsafe(32)}",
        "SUPPORT_URL": "https://support.bench.invalid/",
        "CLAMD_ADDRESS": "tcp://127.0.0.1:3310",  # required in production; no upload is scanned
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "RATE_LIMIT_PER_IP": "999999999/minute",
        "RATE_LIMIT_PER_PRINCIPAL": "999999999/minute",
        # Above the load run's 256 connections: it measures the pool's queue, not load shedding.
        "MAX_CONCURRENT_REQUESTS": "1024",
        "TASK_QUEUE": svc.name,
        "REDIS_KEY_PREFIX": f"{svc.name}:",
        "OTEL_TRACES_EXPORTER": "otlp" if traced else "none",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "KEY_CACHE_SECONDS": "10" if key_cache else "0",
    }
    for name in ("OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_SDK_DISABLED"):
        env.pop(name, None)  # the production default sampling, whatever the caller's shell says
    return env


def _scenarios(api_key: str, note_ids: list[str], ports: dict[str, int]) -> list[Scenario]:
    """Every pair measured; BENCH_ONLY (e.g. `1,3a`) keeps those whose number it lists."""
    auth = (("Authorization", f"Bearer {api_key}"),)
    note = random.choice(note_ids)  # noqa: S311 - any seeded note will do

    def url(target: str, path: str) -> str:
        return f"http://127.0.0.1:{ports[target]}{path}"

    def read(target: str, path: str) -> Request:
        return Request(url(target, path), auth)

    def post(target: str, path: str) -> Request:
        return Request(url(target, path), auth, post_body=NOTE_BODY)

    service_read = f"/api/v1/notes/{note}"
    bare_read = read("bare", f"/notes/{note}")
    hello = read("bare", "/hello")
    return [
        Scenario(
            "1a. read by id, WARM PATH (service: key cache warm; bare: one transaction)",
            0.8,
            "plain",
            read("plain", service_read),
            bare_read,
        ),
        Scenario(
            "1b. read by id, COLD AUTH (service: KEY_CACHE_SECONDS=0; bare: verify_api_key, then "
            "the read: two transactions each)",
            None,
            "nocache",
            read("nocache", service_read),
            read("bare", f"/cold/notes/{note}"),
        ),
        Scenario(
            "1c. read by id, warm path, tracing at 10 %",
            None,
            "traced",
            read("traced", service_read),
            bare_read,
        ),
        Scenario(
            "2. POST with Idempotency-Key (bare: the same transaction and idempotency row)",
            0.7,
            "plain",
            post("plain", "/api/v1/notes"),
            post("bare", "/notes"),
        ),
        Scenario(
            "3a. hello, full stack, tracing off", 0.6, "plain", read("plain", "/hello"), hello
        ),
        Scenario(
            "3b. hello, full stack, tracing at 10 %",
            0.45,
            "traced",
            read("traced", "/hello"),
            hello,
        ),
        Scenario(
            "3c. hello behind all the service's routes, tracing off",
            None,
            "plain",
            read("plain", "/hello/last"),
            hello,
        ),
        Scenario(
            "3d. hello, full stack, tracing off (bare: no Redis round trip, no I/O at all)",
            None,
            "plain",
            read("plain", "/hello"),
            read("bare", "/hello/alone"),
        ),
    ]


def _selected(name: str) -> bool:
    only = [part.strip() for part in os.environ.get("BENCH_ONLY", "").split(",") if part.strip()]
    return not only or name.split(".")[0] in only


def _timed_run(wrk: str, request: Request, config: Config, server: Running) -> Result:
    """One wrk run; also records the server's CPU seconds per request during it."""
    cpu_before = server.cpu_seconds()
    result = run_wrk(wrk, request, config.connections, config.duration)
    cpu = (server.cpu_seconds() - cpu_before) / max(result.requests, 1)
    return replace(result, cpu_per_request=cpu)


def _run_pair(
    wrk: str, scenario: Scenario, config: Config, service: Running, bare: Running
) -> PairOutcome:
    outcome = PairOutcome(scenario.name, scenario.goal)
    for warmup in (scenario.service_request, scenario.bare_request):
        run_wrk(wrk, warmup, config.connections, 2)
    for _ in range(config.rounds):
        outcome.service.append(_timed_run(wrk, scenario.service_request, config, service))
        outcome.bare.append(_timed_run(wrk, scenario.bare_request, config, bare))
    return outcome


def _header(config: Config) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"make bench, {now}: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}")
    print(
        f"wrk -t1 -c{config.connections}, {config.rounds} rounds x {config.duration:g} s per "
        f"target, interleaved; 1 uvicorn worker each; JSON logs in {LOG_DIR}"
    )
    if os.environ.get("BENCH_WITHOUT"):
        print(f"the service WITHOUT {os.environ['BENCH_WITHOUT']}: no goal applies to this run")


def _separate_cpus(servers: list[Running], pin: bool) -> str:
    """The measured servers on the last CPU, this process and wrk on the others: one CPU for
    the server, as a worker of a deployment has; why, in docs/performance.md (Method)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return "not pinned to CPUs"
    for running in servers:
        pin_to_cpus(running.pid, {cpus[-1]})
    pin_to_cpus(os.getpid(), set(cpus[:-1]))  # wrk inherits it
    others = ",".join(str(cpu) for cpu in cpus[:-1])
    return f"servers pinned to CPU {cpus[-1]}, wrk to CPU {others}"


def _start_servers(stack: ExitStack, svc: Services, otlp_endpoint: str) -> dict[str, Running]:
    envs = {
        "plain": service_env(svc, otlp_endpoint),
        "nocache": service_env(svc, otlp_endpoint, key_cache=False),
        "traced": service_env(svc, otlp_endpoint, traced=True),
        "bare": service_env(svc, otlp_endpoint),
    }
    return {
        name: stack.enter_context(
            server(
                "bare_app.py" if name == "bare" else "service_app.py", env, LOG_DIR / f"{name}.log"
            )
        )
        for name, env in envs.items()
    }


def _measure(config: Config, svc: Services, wrk: str) -> bool:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with OtlpSink() as sink, ExitStack() as stack:
        plain_env = service_env(svc, sink.endpoint)
        cli(plain_env, "migrate")
        tenant = json.loads(cli(plain_env, "create-tenant", "bench"))
        running = _start_servers(stack, svc, sink.endpoint)
        print(_separate_cpus(list(running.values()), config.pin))
        ports = {name: process.port for name, process in running.items()}
        note_ids = create_notes(ports["plain"], tenant["api_key"], config.notes)
        scenarios = _scenarios(tenant["api_key"], note_ids, ports)
        pairs = []
        for scenario in scenarios:
            if _selected(scenario.name):
                service, bare = running[scenario.service], running["bare"]
                pairs.append(_run_pair(wrk, scenario, config, service, bare))
                print_pair(pairs[-1])
        load_ok = None
        if _selected("4."):
            load_request = scenarios[2].service_request  # the read, tracing at 10 %
            load = run_wrk(wrk, load_request, config.load_connections, config.load_duration)
            load_ok = print_load(
                f"4. read by id at {config.load_connections} connections (tracing at 10 %, "
                "DB pool 10 + 5 overflow)",
                load,
            )
        print(f"OTLP exports received by the sink: {sink.exports}")
        return print_verdict(pairs, load_ok)


def main() -> int:
    config = Config.from_env()
    wrk = ensure_wrk()
    _header(config)
    with services() as svc:
        passed = _measure(config, svc, wrk)
    return 1 if config.strict and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
