"""Retry and dead-letter decisions as pure functions, so the policy is tested directly.

One policy for every task:
- the service's own database unreachable (`DependencyOutageError`, raised by the worker's
  `Database`): the message goes back to the broker after a pause, without spending the task's
  retry budget, for as long as the outage lasts. The work is fine, the moment is not; a task
  whose budget an outage spent would be dead-lettered the moment the database came back.
- the errors a task declares transient, and any other connection failure (refused or lost,
  timeouts, SQLSTATE classes 08, 57P and 53, the set the API answers with 503), such as a webhook
  receiver that is down: retried at most `max_retries` times, with full-jitter exponential
  backoff capped at `max_delay` (AWS Architecture Blog, "Exponential Backoff and Jitter").
- everything else, and the last failure, is dead-lettered.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Literal

from app.db.errors import connection_problem

# Longest pause before a requeued message goes back to the broker: the worker holds it meanwhile.
REQUEUE_PAUSE_MAX_S = 10.0
_CHAIN_DEPTH = 5  # a task's own error wrapping a driver's wrapping an OS error, at most


class TransientError(Exception):
    """Raise (or subclass) for failures worth retrying: timeouts, 503s, lost connections."""


class DependencyOutageError(TransientError):
    """The service's own database cannot be reached right now (`problem`: `unreachable`,
    `connection_lost`, `sqlstate_57P03`…). Raised only by the worker's `Database` and the purge's
    owner engine, so that a receiver or API a task calls, whose connection errors look the same,
    is never taken for it."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"the service's database is unavailable ({problem})")
        self.problem = problem


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base_delay: float
    max_delay: float


@dataclass(frozen=True)
class Decision:
    action: Literal["retry", "requeue", "dead_letter"]
    delay: float = 0.0
    reason: str = ""


def backoff(retry_number: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `retry_number` (0 for the first retry)."""
    ceiling = min(policy.max_delay, policy.base_delay * (2**retry_number))
    return (rng or random).uniform(0, ceiling)


def outage(error: BaseException) -> str | None:
    """Why `error`, or an error it was raised from, means the database or network cannot be
    reached right now (`unreachable`, `connection_lost`, `sqlstate_57P01`…); else None."""
    for seen in _chain(error):
        problem = connection_problem(seen)
        if problem is not None:
            return problem
    return None


def own_outage(error: BaseException) -> DependencyOutageError | None:
    """The outage of the service's own database behind `error`, if that is what it is."""
    for seen in _chain(error):
        if isinstance(seen, DependencyOutageError):
            return seen
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the errors it was raised from, nearest first."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < _CHAIN_DEPTH:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def requeue_pause(
    outages_in_a_row: int, policy: RetryPolicy, rng: random.Random | None = None
) -> float:
    """Seconds a requeued message waits before it goes back: redelivered at once, it would fail
    at once. The backoff of how long the outage has lasted (failures in a row), at most
    `max_delay` and REQUEUE_PAUSE_MAX_S."""
    ceiling = min(policy.max_delay, REQUEUE_PAUSE_MAX_S)
    # Capped exponent: a days-long outage must not overflow a float (2**1024).
    return backoff(min(outages_in_a_row, 32), replace(policy, max_delay=ceiling), rng)


def decide(
    error: BaseException,
    retries_so_far: int,
    policy: RetryPolicy,
    transient: tuple[type[BaseException], ...] = (TransientError,),
    rng: random.Random | None = None,
) -> Decision:
    """What to do after a task attempt failed with `error`."""
    own = own_outage(error)
    if own is not None:  # before the budget: an outage spends none of it
        return Decision("requeue", reason=f"dependency outage: {own.problem}")
    problem = outage(error)
    if problem is None and not isinstance(error, transient):
        return Decision("dead_letter", reason="permanent error")
    if retries_so_far >= policy.max_retries:
        return Decision("dead_letter", reason="retries exhausted")
    reason = "transient error" if problem is None else f"connection failure: {problem}"
    return Decision("retry", delay=backoff(retries_so_far, policy, rng), reason=reason)
