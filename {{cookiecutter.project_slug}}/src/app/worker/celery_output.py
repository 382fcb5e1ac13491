"""Celery's own output as log lines: with LOG_FORMAT=json the worker writes nothing but JSON.

`app.observability.logging` routes the standard library's loggers, Celery's included. Celery
writes outside them in four places, each handled here:
- the start-up banner, printed to stdout: the worker runs with `--quiet` and logs `worker_started`;
- warnings issued before Celery sets up logging (the superuser warning): captured into logging;
- the notices of its signal handlers ("worker: Warm shutdown"), written with `os.write` by
  `celery.apps.worker.safe_say`: replaced by one that writes the same notice as a log line;
- billiard's `multiprocessing` logger (which reports a pool child killed by a signal), to which
  Celery gives a plain-text handler: a `setup_logging` receiver makes Celery configure nothing,
  and that logger propagates to ours instead.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from typing import Any

import celery.apps.worker
import structlog
from celery.signals import celeryd_after_setup, setup_logging
from celery.utils.log import get_multiprocessing_logger

from app.observability.logging import get_logger

log = get_logger("app.worker")
NOTICE_LOGGER = "celery.apps.worker"


def route_celery_output() -> None:
    """Send everything the worker would print through the log pipeline (call before starting)."""
    logging.captureWarnings(True)
    # weak=False: module functions that must live as long as the process.
    setup_logging.connect(_keep_app_logging, weak=False)
    celeryd_after_setup.connect(_log_started, weak=False)
    # No signal or hook lets us reformat these notices; Celery looks the function up in its module
    # at each call, so replacing it there covers every handler (shutdown, restart, SIGUSR1 dump).
    celery.apps.worker.safe_say = write_notice


def _keep_app_logging(**_: Any) -> None:
    """Having a receiver of `setup_logging` makes Celery leave logging alone (in each pool child
    too, which re-runs it): our handler on the root logger stays the only one."""
    pool_logger = get_multiprocessing_logger()
    pool_logger.handlers = []
    pool_logger.propagate = True
    pool_logger.setLevel(logging.ERROR)  # as Celery sets it: below are per-child chatter lines


def _log_started(sender: str, instance: Any, **_: Any) -> None:
    """The banner's facts as one line (`instance` is Celery's `Worker`)."""
    app = instance.app
    pool = instance.pool_cls if isinstance(instance.pool_cls, str) else instance.pool_cls.__module__
    log.info(
        "worker_started",
        hostname=sender,
        pool=pool.rsplit(".", 1)[-1],
        concurrency=instance.concurrency,
        queues=sorted(app.amqp.queues),
        tasks=sorted(name for name in app.tasks if not name.startswith("celery.")),
        broker=app.connection_for_read().as_uri(),  # kombu masks the password
    )


def write_notice(msg: str, f: object = None) -> None:
    """`safe_say`'s replacement: the notice as a log line, written with one `os.write` as Celery
    does. It runs inside signal handlers, where the log stream's lock may already be held by the
    code the signal interrupted: taking it again would deadlock."""
    del f  # Celery passes stdout or stderr; log lines all go to stdout
    notice = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=structlog.get_config()["processors"],
        logger_name=NOTICE_LOGGER,
    )
    # In an empty context: a signal interrupting a task (solo pool) must not stamp it with the
    # task's tenant and ids.
    line = contextvars.Context().run(notice.warning, msg.strip())
    stdout = sys.__stdout__
    if isinstance(line, str) and stdout is not None:
        # As Celery's own: a lost notice must not abort the shutdown that wrote it.
        with contextlib.suppress(OSError):
            os.write(stdout.fileno(), (line + "\n").encode())
