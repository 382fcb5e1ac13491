"""A worker process killed mid-task (SIGKILL) loses nothing: the task runs again, once."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from redis import Redis

from app.settings import Settings
from app.worker.celery_app import create_celery
from tests.processes import start_app
from tests.worker.crash_tasks import SLOW_TASK
from tests.worker.output import ProcessOutput, not_json_lines


@pytest.fixture
def prefork_worker(worker_env: dict[str, str]) -> Iterator[ProcessOutput]:
    args = ["worker", "--pool", "prefork", "--concurrency", "1"]
    output = ProcessOutput(start_app([*args, "--include", "tests.worker.crash_tasks"], worker_env))
    yield output
    if output.process.poll() is None:
        output.stop()


def _wait(predicate: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_task_whose_worker_process_dies_is_redelivered_and_applied_once(
    prefork_worker: ProcessOutput, worker_settings: Settings
) -> None:
    """Late ack + reject-on-worker-lost: after SIGKILL the task reruns; its effect lands once.
    The worker reports the killed child in a JSON log line, like everything else it writes."""
    assert worker_settings.redis_url is not None
    redis = Redis.from_url(worker_settings.redis_url.get_secret_value())
    key = f"crash-{uuid.uuid4().hex[:8]}"
    try:
        create_celery(worker_settings).send_task(SLOW_TASK, args=[key, 3.0])
        _wait(lambda: redis.llen(f"{key}:pids") >= 1)
        victim = int(redis.lindex(f"{key}:pids", 0) or 0)
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: redis.get(f"{key}:effect") is not None)
        pids = [int(pid) for pid in redis.lrange(f"{key}:pids", 0, -1)]
        assert len(pids) >= 2
        assert pids[0] == victim != pids[-1]
        assert int(redis.get(f"{key}:effect") or 0) == 1
        assert prefork_worker.stop() == 0
        assert not_json_lines(prefork_worker.stdout + prefork_worker.stderr) == []
        killed = [line["event"] for line in prefork_worker.records() if "SIGKILL" in line["event"]]
        assert killed, prefork_worker.tail()
    finally:
        redis.delete(f"{key}:pids", f"{key}:effect")
        redis.close()
