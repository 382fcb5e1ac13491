"""When an outbound request may be retried, and how long to wait first (REL-RESILIENCE).

RFC 9110 section 9.2.2: only idempotent methods are retried automatically, and a POST only when it
carries an `Idempotency-Key` (the receiver then applies it once). Retry-After is honoured when the
server sends one; otherwise the wait is full-jitter exponential backoff. A retry budget stops
retries when most calls are failing, so an outage is not multiplied by our own retries.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# 408 and 429 say "try later"; 502/503/504 say the upstream or its proxy is briefly unable.
RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})


def may_retry(method: str, header_names: set[str]) -> bool:
    """Idempotent methods always; anything else only with an Idempotency-Key header."""
    return method.upper() in IDEMPOTENT_METHODS or "idempotency-key" in header_names


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None when absent or bad."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryBudget:
    """A token bucket for retries: each request earns `ratio` of a retry, each retry spends one.

    With ratio 0.2, retries add at most 20 % load over a sustained failure (plus `reserve`
    retries to start with, so a quiet service can still retry its first failures). tenacity
    bounds the attempts of one call; this bounds retries across calls, which it does not do.
    """

    def __init__(self, ratio: float = 0.2, reserve: float = 10.0) -> None:
        self._ratio = ratio
        self._cap = reserve
        self._tokens = reserve
        self._lock = threading.Lock()

    def record_request(self) -> None:
        with self._lock:
            self._tokens = min(self._cap, self._tokens + self._ratio)

    def try_spend(self) -> bool:
        with self._lock:
            if self._tokens < 1.0:
                return False
            self._tokens -= 1.0
            return True
