"""The pure rules behind outbound retries: which requests, how long to wait, how many."""

from __future__ import annotations

from datetime import UTC, datetime

from app.outbound.policy import RetryBudget, may_retry, retry_after_seconds

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_only_idempotent_methods_or_keyed_posts_may_be_retried() -> None:
    assert may_retry("GET", set())
    assert may_retry("put", set())
    assert not may_retry("POST", set())
    assert not may_retry("PATCH", {"content-type"})
    assert may_retry("POST", {"idempotency-key"})


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("7", NOW) == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", NOW) == 0.0
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None


def test_the_budget_allows_a_share_of_retries_per_request() -> None:
    budget = RetryBudget(ratio=0.5, reserve=1.0)
    assert budget.try_spend()
    assert not budget.try_spend()
    budget.record_request()
    assert not budget.try_spend()
    budget.record_request()
    assert budget.try_spend()
