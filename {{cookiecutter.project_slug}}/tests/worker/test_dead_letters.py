"""REL-WORKERS with a real worker: failures are retried, then dead-lettered; `dlq` works."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2

from app.settings import Settings
from app.worker import operations
from tests.processes import start_app
from tests.worker.output import ProcessOutput, metric_value


def _dead_letters(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(line) for line in operations.dlq_list(settings, as_json=True)]


def _wait_for(settings: Settings, task_id: str, replays: int = 0) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for letter in _dead_letters(settings):
            if letter["id"] == task_id and letter["replay_count"] >= replays:
                return letter
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} never reached the dead-letter store")


def test_an_always_failing_task_ends_in_the_dead_letter_store(
    worker: ProcessOutput, worker_settings: Settings
) -> None:
    """The drill task is tried 1 + TASK_MAX_RETRIES times, then stored with its exception."""
    task_id = operations.dlq_drill(worker_settings)
    letter = _wait_for(worker_settings, task_id)
    assert letter["task_name"] == "app.worker.drill"
    assert letter["exception_type"] == "TransientError"
    assert "always fails" in letter["message"]
    assert letter["attempts"] == 3


def test_retries_and_dead_letters_are_counted_on_the_worker_port(
    worker: ProcessOutput, worker_settings: Settings, worker_env: dict[str, str]
) -> None:
    """The worker's own /metrics counts each retry and the final dead letter of a task."""
    task_id = operations.dlq_drill(worker_settings)
    _wait_for(worker_settings, task_id)
    text = httpx2.get(f"http://127.0.0.1:{worker_env['WORKER_METRICS_PORT']}/metrics").text
    drill = 'task="app.worker.drill"'
    assert metric_value(text, "task_dead_letters_total", drill) >= 1
    assert metric_value(text, "task_retries_total", drill) >= 2
    assert metric_value(text, "task_runs_total", f'{drill},outcome="dead_lettered"') >= 1
    assert "task_duration_seconds_bucket" in text
    assert f'task_queue_depth{{queue="{worker_env["TASK_QUEUE"]}"}}' in text


def test_replay_re_enqueues_and_keeps_the_record(
    worker: ProcessOutput, worker_settings: Settings, worker_env: dict[str, str]
) -> None:
    """`dlq replay ID` publishes the task again and marks the record; `dlq purge` empties it."""
    task_id = operations.dlq_drill(worker_settings)
    _wait_for(worker_settings, task_id)
    process = start_app(["dlq", "replay", task_id], worker_env)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    replayed = json.loads(out)
    assert replayed["replayed"] == task_id
    # The replayed run fails again (it is a drill) and lands under its own new id.
    _wait_for(worker_settings, replayed["task_id"])
    marked = next(letter for letter in _dead_letters(worker_settings) if letter["id"] == task_id)
    assert marked["replay_count"] == 1
    assert marked["replayed_at"] is not None

    purge = start_app(["dlq", "purge"], worker_env)
    purged_out, _ = purge.communicate(timeout=60)
    assert json.loads(purged_out)["purged"] >= 2
    assert _dead_letters(worker_settings) == []


def test_replaying_an_unknown_id_fails_clearly(worker_env: dict[str, str]) -> None:
    """A mistyped id is an error with a message, not a silent no-op."""
    process = start_app(["dlq", "replay", "no-such-task"], worker_env)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "no dead letter" in err
