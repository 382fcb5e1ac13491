"""A task for the crash test, loaded into the worker with `worker --include`.

It reports its process id, waits long enough to be killed, and applies its effect at most once
per task id (the dedupe every at-least-once task needs).
"""

from __future__ import annotations

import os
import time

from celery import current_task
from redis import Redis

from app.settings import get_settings
from app.worker.tasks import reliable_task

SLOW_TASK = "tests.slow_effect"


def _redis() -> Redis:
    url = get_settings().redis_url
    assert url is not None
    client: Redis = Redis.from_url(url.get_secret_value())
    return client


@reliable_task(SLOW_TASK)
def slow_effect(key: str, seconds: float) -> None:
    redis = _redis()
    redis.rpush(f"{key}:pids", os.getpid())
    time.sleep(seconds)
    if redis.set(f"{key}:done:{current_task.request.id}", 1, nx=True):
        redis.incr(f"{key}:effect")
