"""The Celery application, with settings chosen so that no job is lost silently.

- `task_acks_late` + `task_reject_on_worker_lost`: a message is acked after the task finished, and
  a worker killed mid-task leaves it to be redelivered (so tasks must be idempotent).
- `task_acks_on_failure_or_timeout=False`: a failure that escapes a task is not acked as if done;
  `reliable_task` requeues (`Reject(requeue=True)`) a message whose dead letter cannot be written.
- prefetch 1, JSON only, soft and hard time limits, and a Redis visibility timeout that settings
  validation keeps longer than the longest retry countdown plus the hard time limit.
- a `task_postrun` handler marks an outbox row done once its task has run (`outbox_completion`);
  the relay publishes again rows that are not done in time, so a broker that loses messages
  delays work but never loses it.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import task_postrun

from app.settings import Settings
from app.worker.outbox_completion import mark_outbox_row_done

TASK_MODULES = [
    "app.worker.tasks",
    "app.notes.tasks",
    "app.lifecycle.tasks",
    "app.webhooks.tasks",
    "app.uploads.tasks",
]
OUTBOX_SWEEP_SECONDS = 10.0
PURGE_EVERY_SECONDS = 3600.0


# weak=False: a module function that must live as long as the process.
task_postrun.connect(mark_outbox_row_done, weak=False)


def kombu_url(url: str) -> str:
    """kombu spells a Redis Unix socket `redis+socket://`, redis-py `unix://`."""
    return "redis+socket://" + url.removeprefix("unix://") if url.startswith("unix://") else url


def create_celery(settings: Settings) -> Celery:
    """A Celery app for `settings`; raises ValueError when no broker is configured."""
    if settings.broker_url is None:
        raise ValueError("CELERY_BROKER_URL or REDIS_URL is required for the worker")
    app = Celery(settings.service_name)
    app.conf.update(
        broker_url=kombu_url(settings.broker_url.get_secret_value()),
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.task_visibility_timeout},
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=False,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        enable_utc=True,
        include=TASK_MODULES,
        task_default_queue=settings.task_queue,
        # Safety nets for the API processes' own relay and for retention; run ONE beat only.
        beat_schedule={
            "relay-outbox": {"task": "app.worker.relay_outbox", "schedule": OUTBOX_SWEEP_SECONDS},
            "purge-expired-data": {"task": "app.lifecycle.purge", "schedule": PURGE_EVERY_SECONDS},
        },
    )
    app.conf.service_settings = settings
    return app
