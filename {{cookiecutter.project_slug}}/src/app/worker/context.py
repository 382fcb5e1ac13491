"""Correlation id and tenant travel with a task in its message headers.

Published from a request, a task carries the request's id and tenant; the worker binds both for
every log line of the task and exposes the tenant so the task's transactions run under its RLS.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any

import structlog
from celery import Task
from celery.signals import before_task_publish, task_postrun, task_prerun

from app.middleware.correlation import current_request_id

# Prefixed: Celery already uses `correlation_id` (it holds the task id).
CORRELATION_HEADER = "app_request_id"
TENANT_HEADER = "app_tenant_id"
_tenant: ContextVar[uuid.UUID | None] = ContextVar("task_tenant", default=None)
publishing_tenant: ContextVar[uuid.UUID | None] = ContextVar("publishing_tenant", default=None)


def task_tenant() -> uuid.UUID | None:
    """The tenant the running task acts for, from its headers."""
    return _tenant.get()


def context_headers() -> dict[str, str]:
    """Headers describing the current request (or task) for a message about to be published."""
    headers: dict[str, str] = {}
    correlation = current_request_id() or structlog.contextvars.get_contextvars().get("request_id")
    if correlation:
        headers[CORRELATION_HEADER] = str(correlation)
    tenant = publishing_tenant.get() or _tenant.get()
    if tenant:
        headers[TENANT_HEADER] = str(tenant)
    return headers


def _add_context(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        for name, value in context_headers().items():
            headers.setdefault(name, value)


def _bind_context(task: Task | None = None, task_id: str | None = None, **_: Any) -> None:
    request = task.request if task is not None else None
    correlation = getattr(request, CORRELATION_HEADER, None) or task_id
    tenant = getattr(request, TENANT_HEADER, None)
    structlog.contextvars.bind_contextvars(
        request_id=correlation, task_id=task_id, task_name=getattr(task, "name", None)
    )
    if tenant:
        structlog.contextvars.bind_contextvars(tenant_id=tenant)
    _tenant.set(uuid.UUID(tenant) if tenant else None)


def _unbind_context(**_: Any) -> None:
    structlog.contextvars.unbind_contextvars("request_id", "task_id", "task_name", "tenant_id")
    _tenant.set(None)


# weak=False: the receivers are module functions that must live as long as the process.
before_task_publish.connect(_add_context, weak=False)
task_prerun.connect(_bind_context, weak=False)
task_postrun.connect(_unbind_context, weak=False)
