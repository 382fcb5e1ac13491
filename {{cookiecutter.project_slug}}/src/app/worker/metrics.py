"""Worker metrics: task runs by outcome, retries, dead letters, durations and queue depth,
exported on the worker's own port (WORKER_METRICS_PORT)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError

TASK_RUNS = Counter("task_runs_total", "Task attempts by outcome.", ["task", "outcome"])
TASK_RETRIES = Counter(
    "task_retries_total", "Task attempts that failed and were retried.", ["task"]
)
TASK_DEAD_LETTERS = Counter(
    "task_dead_letters_total", "Tasks that failed for good and were dead-lettered.", ["task"]
)
TASK_DURATION = Histogram(
    "task_duration_seconds",
    "Time one task attempt ran.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0),
)


@contextmanager
def timed(task: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        TASK_DURATION.labels(task).observe(time.perf_counter() - started)


class QueueDepthCollector(Collector):
    """Messages waiting in the Redis broker's queue, read at scrape time."""

    def __init__(self, redis_url: str, queue: str) -> None:
        self._redis_url, self._queue = redis_url, queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("task_queue_depth", "Messages waiting.", labels=["queue"])
        client = Redis.from_url(self._redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        try:
            family.add_metric([self._queue], float(client.llen(self._queue)))
        except RedisError:
            return  # broker unreachable: no sample rather than a wrong one
        finally:
            client.close()
        yield family


def start_exporter(port: int, broker_url: str | None, queue: str) -> None:
    """Serve this worker's metrics (all pool processes' in multi-process mode) on `port`."""
    registry = REGISTRY
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    if broker_url and broker_url.startswith(("redis://", "rediss://", "unix://")):
        registry.register(QueueDepthCollector(broker_url, queue))
    start_http_server(port, addr="0.0.0.0", registry=registry)  # noqa: S104 - scraped by Prometheus
