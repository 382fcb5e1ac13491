"""OBS-TRACING on the outbox relay: a pass that fails leaves OpenTelemetry's context intact.

The broker must die after the relay's producer connected: Celery has then already sent
`before_task_publish` (the instrumentation opens its producer span) when the publish raises.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import create_engine
from app.db.session import Database
from app.dev.services import ServiceUrls
from app.notes.tasks import COUNT_WORDS
from app.observability.telemetry import configure_tracing
from app.settings import Settings
from app.tenants.service import NewTenant
from app.worker.celery_app import create_celery
from app.worker.outbox import OutboxMessage, celery_publisher, enqueue, relay_batch
from tests.faults.servers import private_redis
from tests.worker.leftovers import settle_other_rows


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    assert configure_tracing(Settings(environment="test"), SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
async def database(
    spans: InMemorySpanExporter, service_urls: ServiceUrls
) -> AsyncIterator[Database]:
    engine = create_engine(service_urls.runtime_database_url)
    yield Database(engine)
    await engine.dispose()


async def test_a_failed_relay_pass_logs_no_context_error(
    spans: InMemorySpanExporter,
    database: Database,
    new_tenant: Callable[[], NewTenant],
    caplog: pytest.LogCaptureFixture,
    service_urls: ServiceUrls,
) -> None:
    """Broker gone mid-way: passes fail, the row waits, and no 'Failed to detach context'."""
    tenant = new_tenant()

    async def work(session: AsyncSession) -> uuid.UUID:
        with trace.get_tracer("tests").start_as_current_span("request"):
            return await enqueue(session, tenant.tenant_id, COUNT_WORDS, str(uuid.uuid4()))

    row_id = await database.run(work, tenant.tenant_id)
    await settle_other_rows(service_urls.owner_database_url, row_id)
    with private_redis() as broker:
        app = create_celery(Settings(environment="test", celery_broker_url=SecretStr(broker.url)))
        app.conf.broker_transport_options = {"max_retries": 1}
        publish = celery_publisher(app)
        publish(OutboxMessage(uuid.uuid4(), COUNT_WORDS, ["warm-up"], {}, {}))
        broker.stop()
        before = otel_context.get_current()
        with caplog.at_level(logging.WARNING, logger="opentelemetry"):
            for _ in range(2):  # the second pass publishes the same row again
                with pytest.raises(Exception):  # noqa: B017, PT011 - whatever kombu raises
                    await relay_batch(database, publish, redeliver_after=0.001)
    assert otel_context.get_current() == before
    assert [r.getMessage() for r in caplog.records if r.name.startswith("opentelemetry")] == []
    failed = [
        s
        for s in spans.get_finished_spans()
        if s.kind is SpanKind.PRODUCER
        and (s.attributes or {}).get("messaging.message.id") == str(row_id)
    ]
    assert failed, "the failed publish left its producer span unfinished"
    assert all(s.status.status_code is StatusCode.ERROR for s in failed)
