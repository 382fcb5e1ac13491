"""REL-RESILIENCE, DATA-TX: PostgreSQL restarted, killed or frozen under real requests.

The service must answer every request with success or 503 + Retry-After (never a 500, never a
hang), keep every log line JSON, and recover by itself once the database is back.
"""

from __future__ import annotations

import time

import httpx2
import pytest

from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant
from tests.faults.servers import PrivatePostgres
from tests.faults.traffic import notes_traffic, running_service, wait_until_status

pytestmark = pytest.mark.faults

# DB_STATEMENT_TIMEOUT_MS for the freeze test: the driver's deadline is this plus 1 s (2 s).
STATEMENT_TIMEOUT_MS = 1_000
# The longest a request may take with the database frozen: waiting for a pooled connection
# (5 s) or a command's deadline on a held one (pre-ping, then the statement: 2 x 2 s), plus a
# generous margin for a loaded machine. Without a client deadline requests hang for the whole
# freeze (FREEZE_S), which is well above it.
REQUEST_BOUND_S = 10.0
FREEZE_S = 12.0


def test_restarts_and_a_crash_under_requests_give_only_success_or_503(
    fault_urls: ServiceUrls, fault_postgres: PrivatePostgres, fault_tenant: NewTenant
) -> None:
    """Restart, then SIGKILL + crash recovery, under load: only 2xx/503, JSON logs, recovery."""
    with running_service(fault_urls) as service:
        with notes_traffic(service.base_url, fault_tenant) as traffic:
            time.sleep(1.0)
            fault_postgres.restart()
            time.sleep(1.0)
            fault_postgres.kill()
            time.sleep(0.5)
            fault_postgres.start()
            time.sleep(1.0)
        assert wait_until_status(lambda: httpx2.get(f"{service.base_url}/health/ready"), 200)
    assert traffic.statuses() <= {200, 201, 503}, traffic.statuses()
    events = service.log_events()  # every line is JSON, or this raises
    names = {event["event"] for event in events}
    assert "database_unavailable" in names, "the fault never reached a request"
    assert "unhandled_exception" not in names
    assert "Traceback" not in service.stderr
    assert service.returncode == 0


def test_a_frozen_database_never_holds_a_request_past_the_bound(
    fault_urls: ServiceUrls, fault_postgres: PrivatePostgres, fault_tenant: NewTenant
) -> None:
    """PostgreSQL SIGSTOPped: every request ends within the bound, as 2xx or 503, never 500."""
    env = {"DB_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS)}
    with running_service(fault_urls, **env) as service:
        with notes_traffic(service.base_url, fault_tenant) as traffic:
            time.sleep(0.5)
            fault_postgres.freeze()
            time.sleep(FREEZE_S)
            fault_postgres.thaw()
        assert wait_until_status(lambda: httpx2.get(f"{service.base_url}/health/ready"), 200)
    slowest = max(outcome.seconds for outcome in traffic.outcomes)
    assert slowest < REQUEST_BOUND_S, f"a request took {slowest:.1f} s"
    assert traffic.statuses() <= {200, 201, 503}, traffic.statuses()
    assert 503 in traffic.statuses(), "the freeze never reached a request"
    assert "unhandled_exception" not in {event["event"] for event in service.log_events()}
