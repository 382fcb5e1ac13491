"""A warning that would repeat on every request, logged at most once per interval with a count.

While an optional dependency is down (Redis: the rate limiter fails open, the cache is bypassed)
the same warning would otherwise be written for every request, hundreds of lines a second, and
bury everything else. The metric beside each warning still counts every event; the log line says
that it is happening, and its `suppressed` field how many of the same were left out since the
line before.

Hand-written: structlog has no rate limiting, and the throttling filters on PyPI work on the
standard library's `LogRecord`, which our structlog lines never become.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from structlog.typing import FilteringBoundLogger

DEFAULT_INTERVAL_SECONDS = 10.0


class ThrottledWarning:
    """`event` logged as a warning at most once per `interval` seconds.

    The first call logs at once (`suppressed=0`); calls in the next `interval` seconds are only
    counted, and the first call after it logs with that count. One instance per kind of event
    and per owner (a middleware, a cache namespace), so one noisy kind never hides another.
    """

    def __init__(
        self,
        logger: FilteringBoundLogger,
        event: str,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._event = event
        self._interval = interval
        self._clock = clock
        self._quiet_until = float("-inf")
        self._suppressed = 0

    def __call__(self, **fields: Any) -> None:
        now = self._clock()
        if now < self._quiet_until:
            self._suppressed += 1
            return
        suppressed, self._suppressed = self._suppressed, 0
        self._quiet_until = now + self._interval
        self._logger.warning(self._event, suppressed=suppressed, **fields)
