"""OBS-LOGGING for the worker process: everything it writes is a JSON log line, from its start
to its graceful stop; and a graceful stop exits 0."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from app.settings import Settings
from app.worker.celery_app import create_celery
from app.worker.tasks import DRILL_TASK
from tests.processes import free_port, start_app
from tests.worker.output import ProcessOutput, not_json_lines


def test_worker_writes_only_json_lines_and_exits_0_on_sigterm(
    worker_env: dict[str, str], worker_settings: Settings
) -> None:
    """LOG_FORMAT=json, prefork pool: start-up, a failing task, retries, its dead letter and the
    warm shutdown after SIGTERM are all JSON objects with `event` and `level`; it exits 0."""
    queue = f"test-{uuid.uuid4().hex[:10]}"
    env = {**worker_env, "WORKER_METRICS_PORT": str(free_port()), "TASK_QUEUE": queue}
    args = ["worker", "--pool", "prefork", "--concurrency", "1"]
    output = ProcessOutput(start_app(args, env))
    task_id = f"drill-{uuid.uuid4()}"
    try:
        publisher = create_celery(worker_settings.model_copy(update={"task_queue": queue}))
        publisher.send_task(DRILL_TASK, task_id=task_id)
        output.wait_for(
            lambda line: line["event"] == "task_dead_lettered" and line.get("task_id") == task_id
        )
    finally:
        code = output.stop()
    assert code == 0, output.tail()
    assert output.stdout, "the worker wrote nothing"
    assert not_json_lines(output.stdout) == [], output.tail()
    assert not_json_lines(output.stderr) == [], output.tail()
    events = [record["event"] for record in output.records()]
    assert "worker_started" in events
    assert any("Warm shutdown" in event for event in events)


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_a_sigterm_while_the_worker_starts_is_a_clean_stop(
    worker_env: dict[str, str], command: str, tmp_path: Path
) -> None:
    """SIGTERM early in the start, before Celery has installed its signal handlers (here: while
    the worker or beat checks its database role against a server that never answers): it stops
    cleanly with exit 0, not killed by the signal (-15), and writes no traceback or plain text."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        env = {
            **worker_env,
            "DATABASE_URL": f"postgresql://app_runtime:pw@127.0.0.1:{port}/app",
            "WORKER_METRICS_PORT": str(free_port()),
        }
        options = {"worker": ["--pool", "solo"], "beat": ["--schedule-file", str(tmp_path / "s")]}
        output = ProcessOutput(start_app([command, *options[command]], env))
        silent.settimeout(30)
        connection, _ = silent.accept()  # the role check has begun: Celery is not started yet
        with connection:
            code = output.stop()
    assert code == 0, output.tail()
    assert not_json_lines(output.stdout) == [], output.tail()
    assert not_json_lines(output.stderr) == [], output.tail()
