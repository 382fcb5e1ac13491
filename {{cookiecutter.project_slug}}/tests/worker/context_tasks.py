"""A task for the context tests, loaded into the worker with `worker --include`.

It does its work in a coroutine on the worker's event loop, as every database task does, and
reports from inside it what context it sees: its log line, its span and the task's tenant.
"""

from __future__ import annotations

from opentelemetry import trace

from app.observability.logging import get_logger
from app.worker.context import task_tenant
from app.worker.runtime import run_async
from app.worker.tasks import reliable_task

PROBE_TASK = "tests.context_probe"
log = get_logger("tests.context_probe")
tracer = trace.get_tracer(__name__)


@reliable_task(PROBE_TASK)
def context_probe(label: str) -> None:
    async def probe() -> None:
        with tracer.start_as_current_span("context_probe"):
            log.info("context_probe", label=label, tenant_seen=str(task_tenant()))

    run_async(probe)
