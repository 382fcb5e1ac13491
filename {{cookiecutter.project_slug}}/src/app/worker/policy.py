"""Retry and dead-letter decisions as pure functions, so the policy is tested directly.

One policy for every task: the errors a task declares transient, and for every task a database or
network that cannot be reached right now (connection refused or lost, timeouts, SQLSTATE classes
08, 57P and 53, the same set the API answers with 503), are retried at most `max_retries` times,
with full-jitter exponential backoff capped at `max_delay` (AWS Architecture Blog, "Exponential
Backoff and Jitter"). Everything else, and the last failure, is dead-lettered.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from app.db.errors import connection_problem


class TransientError(Exception):
    """Raise (or subclass) for failures worth retrying: timeouts, 503s, lost connections."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int
    base_delay: float
    max_delay: float


@dataclass(frozen=True)
class Decision:
    action: Literal["retry", "dead_letter"]
    delay: float = 0.0
    reason: str = ""


def backoff(retry_number: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `retry_number` (0 for the first retry)."""
    ceiling = min(policy.max_delay, policy.base_delay * (2**retry_number))
    return (rng or random).uniform(0, ceiling)


def outage(error: BaseException) -> str | None:
    """Why `error`, or an error it was raised from, means the database or network cannot be
    reached right now (`unreachable`, `connection_lost`, `sqlstate_57P01`…); else None."""
    seen: BaseException | None = error
    for _ in range(5):  # a task's own error wrapping a driver's wrapping an OS error, at most
        if seen is None:
            return None
        problem = connection_problem(seen)
        if problem is not None:
            return problem
        seen = seen.__cause__ or seen.__context__
    return None


def decide(
    error: BaseException,
    retries_so_far: int,
    policy: RetryPolicy,
    transient: tuple[type[BaseException], ...] = (TransientError,),
    rng: random.Random | None = None,
) -> Decision:
    """What to do after a task attempt failed with `error`."""
    problem = outage(error)
    if problem is None and not isinstance(error, transient):
        return Decision("dead_letter", reason="permanent error")
    if retries_so_far >= policy.max_retries:
        return Decision("dead_letter", reason="retries exhausted")
    reason = "transient error" if problem is None else f"connection failure: {problem}"
    return Decision("retry", delay=backoff(retries_so_far, policy, rng), reason=reason)
