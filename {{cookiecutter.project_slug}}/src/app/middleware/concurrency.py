"""At most MAX_CONCURRENT_REQUESTS requests in flight per process; past that, 503 at once.

A process that takes every request it is given slows all of them down together, until the
clients' timeouts turn the whole queue into failures. Shedding the excess with 503 and
`Retry-After` keeps the admitted requests fast and tells a load balancer to try another
replica. Probes and the metrics scrape are not counted and never shed: a busy process is alive,
and an operator needs its metrics most when it is busy.

A plain counter suffices: one event loop per process, and the check and the increment happen
with no `await` between them. uvicorn's `limit_concurrency` was the alternative; it counts idle
keep-alive connections as well, and answers a plain-text 503 without `Retry-After`, the security
headers or a correlation id.
"""

from __future__ import annotations

from collections.abc import Awaitable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.http.errors import OverloadedError, domain_problem
from app.observability.logging import get_logger
from app.observability.throttled_warning import ThrottledWarning

log = get_logger("app.concurrency")
NOT_COUNTED = frozenset({"/health/live", "/health/ready", "/metrics"})


class ConcurrencyLimitMiddleware:
    """Counts requests in flight; answers 503 with `Retry-After: 1` past the limit."""

    def __init__(self, app: ASGIApp, limit: int, support_url: str) -> None:
        self.app = app
        self.limit = limit
        self.support_url = support_url
        self.in_flight = 0
        # Under overload every request past the limit is shed: one line per interval, not each.
        self._shed_warning = ThrottledWarning(log, "request_shed")

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or scope["path"] in NOT_COUNTED:
            return self.app(scope, receive, send)
        if self.in_flight >= self.limit:
            return self._shed(scope, receive, send)
        return self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _shed(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._shed_warning(in_flight=self.in_flight, limit=self.limit)
        error = OverloadedError(
            f"The service is at its limit of {self.limit} requests in flight; retry shortly.",
            retry_after=1,
        )
        await domain_problem(scope, error, self.support_url)(scope, receive, send)
