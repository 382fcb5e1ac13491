"""Retry and dead-letter decisions as pure functions, so the policy is tested directly.

One policy for every task: only errors a task declares transient are retried, at most
`max_retries` times, with full-jitter exponential backoff capped at `max_delay` (AWS Architecture
Blog, "Exponential Backoff and Jitter"). Everything else, and the last failure, is dead-lettered.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal


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


def decide(
    error: BaseException,
    retries_so_far: int,
    policy: RetryPolicy,
    transient: tuple[type[BaseException], ...] = (TransientError,),
    rng: random.Random | None = None,
) -> Decision:
    """What to do after a task attempt failed with `error`."""
    if not isinstance(error, transient):
        return Decision("dead_letter", reason="permanent error")
    if retries_so_far >= policy.max_retries:
        return Decision("dead_letter", reason="retries exhausted")
    return Decision("retry", delay=backoff(retries_so_far, policy, rng), reason="transient error")
