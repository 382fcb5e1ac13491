"""REL-WORKERS: the retry policy as pure functions."""

from __future__ import annotations

import random

import pytest

from app.worker.policy import Decision, RetryPolicy, TransientError, backoff, decide

POLICY = RetryPolicy(max_retries=5, base_delay=2.0, max_delay=60.0)


def test_transient_errors_are_retried_with_jittered_backoff() -> None:
    """A transient failure with retries left is retried after 0..base*2**n seconds."""
    rng = random.Random(1)  # noqa: S311 - reproducible jitter, not cryptography
    decision = decide(TransientError("timeout"), 3, POLICY, rng=rng)
    assert decision.action == "retry"
    assert 0 <= decision.delay <= 16.0


def test_retries_are_bounded() -> None:
    """After max_retries retries the next failure is dead-lettered."""
    assert decide(TransientError(), 5, POLICY) == Decision(
        "dead_letter", reason="retries exhausted"
    )


def test_undeclared_errors_are_not_retried() -> None:
    """A bug (ValueError) goes straight to the dead-letter store."""
    assert decide(ValueError("bad input"), 0, POLICY).action == "dead_letter"


def test_tasks_can_declare_their_own_transient_errors() -> None:
    """A task listing ConnectionError as transient gets it retried."""
    decision = decide(ConnectionError(), 0, POLICY, transient=(ConnectionError,))
    assert decision.action == "retry"


@pytest.mark.parametrize("retry_number", [0, 1, 4, 10, 40])
def test_backoff_is_full_jitter_capped_at_max_delay(retry_number: int) -> None:
    """Delays spread over [0, min(max_delay, base * 2**n)]."""
    rng = random.Random(retry_number)  # noqa: S311 - reproducible jitter, not cryptography
    delays = [backoff(retry_number, POLICY, rng) for _ in range(300)]
    ceiling = min(60.0, 2.0 * 2**retry_number)
    assert all(0 <= delay <= ceiling for delay in delays)
    assert max(delays) > ceiling * 0.8
