"""REL-WORKERS: the retry policy as pure functions."""

from __future__ import annotations

import ipaddress
import random
import statistics

import pytest
from asyncpg.exceptions import (  # type: ignore[import-untyped,unused-ignore]  # no stubs
    AdminShutdownError,
    CannotConnectNowError,
    ConnectionDoesNotExistError,
    UniqueViolationError,
)

from app.outbound.destinations import DestinationGuard
from app.webhooks.delivery import Delivery, DeliveryFailedError, send
from app.webhooks.signing import generate_secret
from app.worker.policy import (
    REQUEUE_PAUSE_MAX_S,
    Decision,
    DependencyOutageError,
    RetryPolicy,
    TransientError,
    backoff,
    decide,
    requeue_pause,
)
from tests.processes import free_port

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


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        ConnectionDoesNotExistError("connection was closed"),  # SQLSTATE 08003
        AdminShutdownError("terminating connection due to administrator command"),  # 57P01
        CannotConnectNowError("the database system is starting up"),  # 57P03
    ],
    ids=type,
)
def test_connection_failures_are_transient_for_every_task(error: Exception) -> None:
    """A database or network outage is retried even by a task that declared no transient
    errors of its own: the work is fine, the moment is not."""
    assert decide(error, 0, POLICY, transient=()).action == "retry"


def test_a_connection_failure_behind_a_task_error_is_transient() -> None:
    """A task that wraps the outage in its own error (`raise ... from`) is still retried."""
    error = RuntimeError("could not load the endpoint")
    error.__cause__ = ConnectionRefusedError(111, "Connect call failed")
    assert decide(error, 0, POLICY, transient=()).action == "retry"


def test_other_database_errors_stay_permanent() -> None:
    """A constraint violation (SQLSTATE 23505) is a bug or bad data: retrying cannot help."""
    assert decide(UniqueViolationError("duplicate key"), 0, POLICY).action == "dead_letter"


def test_connection_failures_are_still_bounded() -> None:
    """An outage longer than the retries ends in the dead-letter path like any transient error."""
    decision = decide(ConnectionRefusedError(), POLICY.max_retries, POLICY)
    assert decision == Decision("dead_letter", reason="retries exhausted")


def test_backoff_draws_are_spread_over_the_whole_range() -> None:
    """Full jitter: delays are uniform over [0, ceiling] (mean near half of it, a quarter of them
    under a quarter of it), not all at the ceiling, so clients that failed together retry apart."""
    rng = random.Random(7)  # noqa: S311 - reproducible jitter, not cryptography
    ceiling = 16.0  # retry 3 of POLICY: 2 * 2**3
    delays = [backoff(3, POLICY, rng) for _ in range(2000)]
    assert len(set(delays)) > 1900
    assert statistics.mean(delays) == pytest.approx(ceiling / 2, rel=0.05)
    below_quarter = sum(delay < ceiling / 4 for delay in delays) / len(delays)
    assert below_quarter == pytest.approx(0.25, abs=0.04)
    assert min(delays) < ceiling * 0.01


@pytest.mark.parametrize("retries_so_far", [0, POLICY.max_retries, 40])
def test_an_outage_of_the_services_database_is_requeued_whatever_was_spent(
    retries_so_far: int,
) -> None:
    """The worker's own database unreachable (DependencyOutageError, raised by the worker's
    `Database`) sends the message back to the broker without spending the budget, even when it is
    already spent: a requeued task is never dead-lettered for an outage."""
    decision = decide(DependencyOutageError("unreachable"), retries_so_far, POLICY, transient=())
    assert decision == Decision("requeue", reason="dependency outage: unreachable")


def test_an_outage_behind_a_task_error_is_requeued() -> None:
    """A task that wraps the outage in its own error (`raise ... from`) is requeued too."""
    error = RuntimeError("could not load the endpoint")
    error.__cause__ = DependencyOutageError("connection_lost")
    assert decide(error, POLICY.max_retries, POLICY).action == "requeue"


async def test_a_dead_receivers_refused_connection_spends_the_budget() -> None:
    """A webhook receiver that refuses connections is not the service's own dependency: the real
    error `send` raises is retried within the budget, then dead-lettered, never requeued."""
    loopback = DestinationGuard((ipaddress.ip_network("127.0.0.1/32"),))
    url = f"http://127.0.0.1:{free_port()}/hook"
    delivery = Delivery(url, generate_secret(), "msg_1", b"{}")
    with pytest.raises(DeliveryFailedError) as refused:
        await send(delivery, loopback)
    first = decide(refused.value, 0, POLICY)
    assert first.action == "retry", first
    assert first.reason == "connection failure: unreachable"
    last = decide(refused.value, POLICY.max_retries, POLICY)
    assert last == Decision("dead_letter", reason="retries exhausted")


def test_requeue_pauses_grow_with_the_outage_and_stay_bounded() -> None:
    """The pause before a requeued message goes back follows the backoff of the outage's length
    (consecutive outage failures in this process), capped at the smaller of TASK_RETRY_MAX_DELAY
    and REQUEUE_PAUSE_MAX_S: an outage is not a hot loop, and a worker is never held long."""
    rng = random.Random(3)  # noqa: S311 - reproducible jitter, not cryptography
    first = [requeue_pause(0, POLICY, rng) for _ in range(200)]
    long_outage = [requeue_pause(30, POLICY, rng) for _ in range(200)]
    assert max(first) <= POLICY.base_delay
    assert max(long_outage) <= REQUEUE_PAUSE_MAX_S < POLICY.max_delay
    assert max(long_outage) > REQUEUE_PAUSE_MAX_S * 0.8
    fast = RetryPolicy(max_retries=2, base_delay=0.2, max_delay=0.5)
    assert max(requeue_pause(30, fast, rng) for _ in range(200)) <= fast.max_delay
