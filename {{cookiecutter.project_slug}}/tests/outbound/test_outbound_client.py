"""REL-RESILIENCE: the outbound client against a real, deliberately flaky HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.outbound.client import DependencyUnavailableError, OutboundClient, OutboundDependency
from app.outbound.policy import RetryBudget
from tests.outbound.flaky_server import FlakyServer, Reply, flaky_server


@pytest.fixture
def server() -> Iterator[FlakyServer]:
    with flaky_server() as running:
        yield running


def client_for(server: FlakyServer, **overrides: float) -> OutboundClient:
    settings: dict[str, float] = {"backoff_base": 0.01, "backoff_cap": 0.05, "read_timeout": 0.5}
    settings.update(overrides)
    return OutboundClient(OutboundDependency("flaky", server.url, **settings))  # type: ignore[arg-type]


async def test_an_idempotent_call_is_retried_through_transient_failures(
    server: FlakyServer,
) -> None:
    server.answer(Reply(503), Reply(502))
    client = client_for(server)
    response = await client.request("GET", "/thing")
    await client.aclose()
    assert response.status_code == 200
    assert len(server.hits) == 3


async def test_retries_are_bounded_and_the_last_answer_is_returned(server: FlakyServer) -> None:
    server.answer(*[Reply(503)] * 10)
    client = client_for(server, max_retries=2, breaker_failures=50)
    response = await client.request("GET", "/thing")
    await client.aclose()
    assert response.status_code == 503
    assert len(server.hits) == 3


async def test_a_post_is_retried_only_with_an_idempotency_key(server: FlakyServer) -> None:
    server.answer(Reply(503), Reply(503))
    client = client_for(server)
    plain = await client.request("POST", "/things", json={"a": 1})
    assert plain.status_code == 503
    assert len(server.hits) == 1
    keyed = await client.request(
        "POST", "/things", json={"a": 1}, headers={"Idempotency-Key": "k-1"}
    )
    await client.aclose()
    assert keyed.status_code == 200
    assert len(server.hits) == 3


async def test_client_errors_are_not_retried(server: FlakyServer) -> None:
    server.answer(Reply(404))
    client = client_for(server)
    response = await client.request("GET", "/missing")
    await client.aclose()
    assert response.status_code == 404
    assert len(server.hits) == 1


async def test_retry_after_is_honoured(server: FlakyServer) -> None:
    server.answer(Reply(503, retry_after="1"))
    client = client_for(server, backoff_cap=2.0)
    response = await client.request("GET", "/thing")
    await client.aclose()
    assert response.status_code == 200
    assert server.times[1] - server.times[0] >= 0.95


async def test_a_slow_upstream_times_out_and_becomes_a_503_problem(server: FlakyServer) -> None:
    server.answer(*[Reply(200, delay=0.6)] * 3)
    client = client_for(server, read_timeout=0.2, max_retries=1)
    with pytest.raises(DependencyUnavailableError) as caught:
        await client.request("GET", "/slow")
    await client.aclose()
    assert caught.value.status == 503
    assert "did not answer in time (ReadTimeout)" in caught.value.detail
    assert len(server.hits) == 2


async def test_the_breaker_opens_fails_fast_then_half_opens_and_closes(
    server: FlakyServer,
) -> None:
    server.answer(*[Reply(500)] * 3)
    client = client_for(server, max_retries=0, breaker_failures=3, breaker_reset_seconds=0.5)
    for _ in range(2):
        assert (await client.request("GET", "/thing")).status_code == 500
    with pytest.raises(DependencyUnavailableError):  # the third failure trips it
        await client.request("GET", "/thing")
    with pytest.raises(DependencyUnavailableError) as caught:  # open: the server is not called
        await client.request("GET", "/thing")
    assert len(server.hits) == 3
    assert caught.value.response_headers() == {"Retry-After": "1"}
    await asyncio.sleep(0.6)
    assert (await client.request("GET", "/thing")).status_code == 200  # the trial call
    assert client.breaker.current_state == "closed"
    await client.aclose()


async def test_an_empty_retry_budget_stops_retries(server: FlakyServer) -> None:
    server.answer(*[Reply(503)] * 4)
    dependency = OutboundDependency("flaky", server.url, backoff_base=0.01, backoff_cap=0.05)
    client = OutboundClient(dependency, budget=RetryBudget(ratio=0.0, reserve=1.0))
    await client.request("GET", "/thing")  # one retry allowed by the reserve: 2 hits
    await client.request("GET", "/thing")  # budget empty: no retry, 1 hit
    await client.aclose()
    assert len(server.hits) == 3


async def test_readiness_check_reports_the_dependency(server: FlakyServer) -> None:
    server.answer(Reply(503))
    client = OutboundClient(OutboundDependency("flaky", server.url, critical=True))
    dependency = client.health_dependency()
    assert dependency.critical
    with pytest.raises(Exception, match="503"):
        await dependency.check()
    await dependency.check()
    await client.aclose()


def test_every_dependency_has_finite_timeouts() -> None:
    with pytest.raises(ValueError, match="timeouts must be finite"):
        OutboundDependency("x", "http://127.0.0.1", read_timeout=0)
