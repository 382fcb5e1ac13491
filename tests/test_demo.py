"""The demo serves a ready service and stops everything it started on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.baking import (
    SERVICE_VARIABLES,
    TEMPLATE_ROOT,
    clean_env,
    free_port,
    project_env,
)
from tests.conftest import Baker
from tests.processes import (
    kill_all,
    processes_in,
    processes_in_group,
    wait_until_gone,
    wait_until_ready,
)

EXIT_SECONDS = 20


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-40:])


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_dev_is_ready_then_stops_its_embedded_services(
    service_bake: Baker, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """`python -m app dev` answers 200 on /health/ready; on a stop signal it exits within
    20 s and its embedded PostgreSQL and Redis are gone."""
    project = service_bake()
    port = free_port()
    log = tmp_path / "dev.log"
    devservices = project / ".devservices"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "dev", "--port", str(port)],
            cwd=project,
            env=project_env(project, drop=SERVICE_VARIABLES),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = wait_until_ready(f"http://127.0.0.1:{port}/health/ready", process, seconds=120)
        assert ready, _tail(log)
        started = set(processes_in(devservices).values())
        assert {"postgres", "redis-server"} <= started, started
        process.send_signal(stop_signal)
        process.wait(timeout=EXIT_SECONDS)
        left = wait_until_gone(devservices, seconds=5)
        assert left == {}, f"still running after {stop_signal.name}: {left}\n{_tail(log)}"
        assert not (devservices / "postgres" / "postmaster.pid").exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        kill_all(list(processes_in(devservices)))


def test_make_demo_serves_and_stops_on_sigterm(tmp_path: Path, short_tmp: Path) -> None:
    """`make demo PORT=…` bakes, installs and serves; SIGTERM to make's process group stops
    make, the service and its embedded PostgreSQL and Redis."""
    port = free_port()
    build = short_tmp / "build"
    log = tmp_path / "demo.log"
    # The environment, not the command line, so the baked project's own `make install` keeps its
    # own VENV; BUILD keeps the developer's build/ untouched; this .venv already holds the tools.
    env = clean_env(drop=(*SERVICE_VARIABLES, "MAKEFLAGS", "MAKELEVEL", "MFLAGS"))
    env.update(VENV=sys.prefix, BUILD=str(build))
    with log.open("wb") as sink:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "demo", f"PORT={port}"],
            cwd=TEMPLATE_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    group = make.pid
    try:
        ready = wait_until_ready(f"http://127.0.0.1:{port}/health/ready", make, seconds=300)
        assert ready, _tail(log)
        assert {"postgres", "redis-server"} <= set(processes_in(build).values())
        os.killpg(group, signal.SIGTERM)
        make.wait(timeout=EXIT_SECONDS)
        assert processes_in_group(group) == []
        left = wait_until_gone(build, seconds=5)
        assert left == {}, f"still running after SIGTERM: {left}\n{_tail(log)}"
    finally:
        kill_all(processes_in_group(group))
        kill_all(list(processes_in(build)))
        make.wait(timeout=30)  # reaped, also when an assertion above failed
