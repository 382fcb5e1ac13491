"""`reliable_task`: one retry and dead-letter policy for every task; and the built-in tasks."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from celery import Task, shared_task
from celery.exceptions import Reject, SoftTimeLimitExceeded
from sqlalchemy.ext.asyncio import AsyncSession

from app.observability.logging import get_logger
from app.settings import get_settings
from app.worker import dead_letter
from app.worker.context import CORRELATION_HEADER, task_tenant
from app.worker.metrics import TASK_DEAD_LETTERS, TASK_RETRIES, TASK_RUNS, timed
from app.worker.policy import Decision, RetryPolicy, TransientError, decide, requeue_pause
from app.worker.runtime import run_async, worker_database

log = get_logger("app.worker")
F = TypeVar("F", bound=Callable[..., Any])
DRILL_TASK = "app.worker.drill"


class _OutageLength:
    """Attempts in a row in this process that ended in a requeue: how long the outage has lasted,
    which sets the pause before the next requeue. A task done or dead-lettered resets it."""

    in_a_row = 0


_outages = _OutageLength()


def retry_policy() -> RetryPolicy:
    settings = get_settings()
    return RetryPolicy(
        settings.task_max_retries, settings.task_retry_base_delay, settings.task_retry_max_delay
    )


def _dead_letter(
    task: Task, error: Exception, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    failed = dead_letter.FailedTask(
        task_id=str(task.request.id),
        task_name=str(task.name),
        args=list(args),
        kwargs=dict(kwargs),
        error=error,
        attempts=task.request.retries + 1,
        correlation_id=getattr(task.request, CORRELATION_HEADER, None),
        tenant_id=task_tenant(),
    )

    async def store(session: AsyncSession) -> None:
        await dead_letter.record(session, failed)

    run_async(lambda: worker_database().run(store, tenant_id=None))


def _after_failure(
    task: Task,
    error: Exception,
    transient: tuple[type[BaseException], ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    policy = retry_policy()
    decision = decide(error, task.request.retries, policy, transient)
    if decision.action == "requeue":
        _requeue(task, error, decision.reason, policy)
    if decision.action == "retry":
        _retry(task, error, decision)
    try:
        _dead_letter(task, error, args, kwargs)
    except Exception as write_error:  # noqa: BLE001 - whatever failed, the message must survive
        _requeue(task, error, "dead letter not stored", policy, write_error)
    _outages.in_a_row = 0
    log.error(
        "task_dead_lettered",
        task_id=task.request.id,
        attempts=task.request.retries + 1,
        reason=decision.reason,
        error=type(error).__name__,
    )
    TASK_DEAD_LETTERS.labels(task.name).inc()
    TASK_RUNS.labels(task.name, "dead_lettered").inc()


def _retry(task: Task, error: Exception, decision: Decision) -> NoReturn:
    """Publish the task again after `decision.delay`, one more retry spent."""
    log.warning(
        "task_retry",
        task_id=task.request.id,
        attempt=task.request.retries + 1,
        delay_s=round(decision.delay, 3),
        error=type(error).__name__,
        reason=decision.reason,
    )
    TASK_RETRIES.labels(task.name).inc()
    TASK_RUNS.labels(task.name, "retried").inc()
    try:
        raise task.retry(exc=error, countdown=decision.delay)
    except Reject as unpublished:  # Celery drops the message when it cannot publish the retry
        raise Reject(unpublished.reason, requeue=True) from error


def _requeue(
    task: Task,
    error: Exception,
    reason: str,
    policy: RetryPolicy,
    write_error: Exception | None = None,
) -> NoReturn:
    """Give the message back to the broker (acks_late: it is still unacknowledged), unchanged:
    its retry count is what it was. Never drop it. Either the service's own database is down
    (nothing spent), or the task failed for good and its dead letter could not be written."""
    pause = requeue_pause(_outages.in_a_row, policy)
    _outages.in_a_row += 1
    log.log(
        logging.WARNING if write_error is None else logging.ERROR,
        "task_requeued",
        task_id=task.request.id,
        attempts=task.request.retries + 1,
        reason=reason,
        error=type(error).__name__,
        dead_letter_error=type(write_error).__name__ if write_error is not None else None,
        pause_s=round(pause, 3),
    )
    TASK_RUNS.labels(task.name, "requeued").inc()
    # Redelivered at once, it would fail at once: a pause keeps an outage from being a hot loop
    # of attempts and log lines. Out of time, requeue now rather than fail (that drops it).
    with contextlib.suppress(SoftTimeLimitExceeded):
        time.sleep(pause)
    raise Reject(error, requeue=True)


def reliable_task(
    name: str, transient: tuple[type[BaseException], ...] = (TransientError,)
) -> Callable[[F], Task]:
    """Register `fn` as task `name` under the shared retry and dead-letter policy."""

    def decorate(fn: F) -> Task:
        def run(self: Task, *args: Any, **kwargs: Any) -> Any:
            with timed(name):
                try:
                    result = fn(*args, **kwargs)
                except Exception as error:  # noqa: BLE001 - every failure goes through the policy
                    _after_failure(self, error, transient, args, kwargs)
                    return None
            _outages.in_a_row = 0
            TASK_RUNS.labels(name, "succeeded").inc()
            return result

        task: Task = shared_task(bind=True, name=name, max_retries=None)(run)
        return task

    return decorate


@reliable_task("app.worker.relay_outbox")
def relay_outbox() -> int:
    """Publish outbox rows the API processes have not relayed (crashed, or broker was down)."""
    from celery import current_app

    from app.worker.outbox import celery_publisher, relay_batch

    publish = celery_publisher(current_app)
    return run_async(lambda: relay_batch(worker_database(), publish))


@reliable_task(DRILL_TASK)
def drill(note: str = "dead-letter drill") -> None:
    """Always fails transiently: retried per policy, then dead-lettered. For `dlq drill`."""
    raise TransientError(f"{note}: this task always fails")
