"""OBS-TRACING across processes: a task continues the publisher's trace, exported over OTLP/HTTP
to a receiver this test runs; and each task logs and traces in its own context."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from opentelemetry import context, propagate
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.main import create_app
from app.observability.telemetry import configure_tracing
from app.settings import Settings
from app.tenants.service import NewTenant
from app.worker.celery_app import create_celery
from app.worker.context import CORRELATION_HEADER, TENANT_HEADER
from app.worker.tasks import DRILL_TASK
from tests.loopback import serving
from tests.notes.test_notes_api import fresh_key
from tests.processes import free_port, start_app
from tests.worker.context_tasks import PROBE_TASK
from tests.worker.output import ProcessOutput

RECEIVED_TRACE_IDS: set[str] = set()
# (span name, trace id) of every span received, in arrival order.
RECEIVED_SPANS: list[tuple[str, str]] = []


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                RECEIVED_SPANS.extend((span.name, span.trace_id.hex()) for span in scope.spans)
                RECEIVED_TRACE_IDS.update(span.trace_id.hex() for span in scope.spans)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


@pytest.fixture
def otlp_endpoint() -> Iterator[str]:
    with serving(_Receiver) as url:
        yield url


@pytest.fixture
def traced_worker(worker_env: dict[str, str], otlp_endpoint: str) -> Iterator[ProcessOutput]:
    env = {
        **worker_env,
        "WORKER_METRICS_PORT": str(free_port()),
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SERVICE_NAME": "worker-under-test",
    }
    args = ["worker", "--pool", "solo", "--concurrency", "1"]
    output = ProcessOutput(start_app([*args, "--include", "tests.worker.context_tasks"], env))
    yield output
    if output.process.poll() is None:
        output.stop()


def test_a_task_continues_the_trace_it_was_published_in(
    traced_worker: ProcessOutput, worker_settings: Settings
) -> None:
    """The worker's spans for a task carry the trace id of the traceparent it was sent with."""
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{'a' * 16}-01"
    # Published inside the trace, as the outbox relay does: when this test process has Celery
    # instrumented (another test may have turned tracing on), its publish span joins the trace
    # instead of starting a new one; when it has not, the header alone carries it.
    token = context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        create_celery(worker_settings).send_task(
            DRILL_TASK, task_id=f"traced-{uuid.uuid4()}", headers={"traceparent": traceparent}
        )
    finally:
        context.detach(token)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if trace_id in RECEIVED_TRACE_IDS:
            return
        time.sleep(0.2)
    raise AssertionError(f"no span of trace {trace_id}; saw {len(RECEIVED_TRACE_IDS)} traces")


def test_a_request_and_the_task_it_queues_share_one_trace(
    traced_worker: ProcessOutput,
    worker_env: dict[str, str],
    make_settings: Callable[..., Settings],
    new_tenant: Callable[[], NewTenant],
) -> None:
    """End to end: a POST with a traceparent queues a task through the outbox; the worker's
    spans for that task arrive at the OTLP receiver under the request's trace id."""
    tenant, trace_id = new_tenant(), uuid.uuid4().hex
    api_spans = InMemorySpanExporter()
    provider = configure_tracing(Settings(environment="test"), SimpleSpanProcessor(api_spans))
    assert provider is not None
    with TestClient(create_app(make_settings(task_queue=worker_env["TASK_QUEUE"]))) as client:
        created = client.post(
            "/api/v1/notes",
            json={"title": "traced", "body": "one two"},
            headers={**fresh_key(tenant), "traceparent": f"00-{trace_id}-{'d' * 16}-01"},
        )
        assert created.status_code == 201
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and trace_id not in RECEIVED_TRACE_IDS:
            time.sleep(0.2)
    assert trace_id in RECEIVED_TRACE_IDS, f"saw {len(RECEIVED_TRACE_IDS)} other traces"
    api_trace_ids = {
        format(span.context.trace_id, "032x") for span in api_spans.get_finished_spans()
    }
    assert trace_id in api_trace_ids


def _send_probe(publisher: Celery, label: str) -> dict[str, str]:
    """Publish the probe task for a tenant of its own, inside a trace of its own; its ids."""
    task = {
        "task_id": f"{label}-{uuid.uuid4()}",
        "tenant_id": str(uuid.uuid4()),
        "request_id": uuid.uuid4().hex,
        "trace_id": uuid.uuid4().hex,
    }
    traceparent = f"00-{task['trace_id']}-{'b' * 16}-01"
    headers = {
        CORRELATION_HEADER: task["request_id"],
        TENANT_HEADER: task["tenant_id"],
        "traceparent": traceparent,
    }
    # Inside the trace: see test_a_task_continues_the_trace_it_was_published_in.
    token = context.attach(propagate.extract({"traceparent": traceparent}))
    try:
        publisher.send_task(PROBE_TASK, args=[label], task_id=task["task_id"], headers=headers)
    finally:
        context.detach(token)
    return task


def _is_probe_of(label: str, line: dict[str, Any]) -> bool:
    return line.get("label") == label


def test_each_task_logs_and_traces_in_its_own_context(
    traced_worker: ProcessOutput, worker_settings: Settings
) -> None:
    """Two tasks of two tenants, one after the other in one worker process: what each does on
    the worker's event loop (a log line, a span, the tenant it reads) belongs to that task, not
    to the first task the process ran."""
    publisher = create_celery(worker_settings)
    tasks = {}
    for label in ("first", "second"):
        tasks[label] = _send_probe(publisher, label)
        traced_worker.wait_for(partial(_is_probe_of, label))
    for label, task in tasks.items():
        probe = next(line for line in traced_worker.records() if _is_probe_of(label, line))
        assert {name: probe.get(name) for name in task} == task, probe
        assert probe["tenant_seen"] == task["tenant_id"]
        own = [line for line in traced_worker.records() if line.get("task_id") == task["task_id"]]
        assert {line.get("tenant_id") for line in own} == {task["tenant_id"]}
        assert {line.get("request_id") for line in own} == {task["request_id"]}
    wanted = {("context_probe", task["trace_id"]) for task in tasks.values()}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not wanted <= set(RECEIVED_SPANS):
        time.sleep(0.2)
    probe_spans = {span for span in RECEIVED_SPANS if span[0] == "context_probe"}
    assert wanted <= probe_spans, probe_spans
