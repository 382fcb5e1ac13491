"""The one way this service calls another over HTTP (REL-RESILIENCE).

Every `OutboundClient` has connect, read, write and pool timeouts; retries only what policy.py
allows, with tenacity (bounded attempts, Retry-After or full-jitter backoff, a retry budget);
and guards its dependency with a pybreaker circuit breaker. pybreaker is synchronous and cannot
wrap a coroutine (danielfm/pybreaker#7), so each attempt runs inside `breaker.calling()`: its
state changes are in-memory updates made on the event-loop thread, and the await in between is
ours. The transport is OpenTelemetry's httpx2 transport: a client span per attempt, and the
`traceparent` header sent along, so the callee continues our trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx2
import pybreaker
from opentelemetry.instrumentation.httpx import AsyncOpenTelemetryTransportHttpx2
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from app.health.dependencies import Dependency
from app.http.errors import ServiceUnavailableError
from app.observability.logging import get_logger
from app.observability.metrics import OUTBOUND_REQUESTS, OUTBOUND_RETRIES
from app.observability.telemetry import drop_query_from_client_span
from app.outbound.destinations import ForbiddenDestinationError
from app.outbound.policy import RETRYABLE_STATUSES, RetryBudget, may_retry, retry_after_seconds

log = get_logger("app.outbound")


@dataclass(frozen=True)
class OutboundDependency:
    """One remote service and how patiently we call it. Every timeout is finite by design."""

    name: str
    base_url: str
    critical: bool = False
    connect_timeout: float = 1.0
    read_timeout: float = 5.0
    max_retries: int = 2
    backoff_base: float = 0.1
    backoff_cap: float = 2.0
    breaker_failures: int = 5
    breaker_reset_seconds: float = 30.0
    health_path: str = "/health"

    def __post_init__(self) -> None:
        if not 0 < self.connect_timeout <= 60 or not 0 < self.read_timeout <= 300:
            raise ValueError(f"{self.name}: timeouts must be finite and positive")
        if self.max_retries < 0 or self.breaker_failures < 1:
            raise ValueError(f"{self.name}: max_retries >= 0 and breaker_failures >= 1")


class DependencyUnavailableError(ServiceUnavailableError):
    slug = "dependency-unavailable"
    title = "A service this one depends on is unavailable"


class _UpstreamServerError(Exception):
    """A 5xx raised inside the breaker's block so that it counts; unwrapped right after."""

    def __init__(self, response: httpx2.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class _BudgetSpent(stop_base):
    """Stop retrying when the retry budget is empty; asked only when a retry is due."""

    def __init__(self, budget: RetryBudget) -> None:
        self._budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        return not self._budget.try_spend()


class OutboundClient:
    def __init__(
        self,
        dependency: OutboundDependency,
        transport: httpx2.AsyncBaseTransport | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.dependency = dependency
        timeout = httpx2.Timeout(dependency.read_timeout, connect=dependency.connect_timeout)
        traced = AsyncOpenTelemetryTransportHttpx2(
            transport or httpx2.AsyncHTTPTransport(), request_hook=drop_query_from_client_span
        )
        self._http = httpx2.AsyncClient(
            base_url=dependency.base_url, timeout=timeout, transport=traced
        )
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=dependency.breaker_failures,
            reset_timeout=dependency.breaker_reset_seconds,
            name=dependency.name,
            # A destination the guard refuses (destinations.py) is not a failing dependency.
            exclude=[ForbiddenDestinationError],
        )
        self._budget = budget or RetryBudget()
        self._backoff = wait_random_exponential(
            multiplier=dependency.backoff_base, max=dependency.backoff_cap
        )

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx2.Response:
        """Send with retries; a 4xx or a final 5xx is returned, an unreachable upstream raises.

        Raises DependencyUnavailableError (a 503 problem with Retry-After) when the breaker is
        open or the upstream could not be reached within the attempts allowed, and
        ForbiddenDestinationError, unretried, when a GuardedTransport refuses the destination.
        """
        request = self._http.build_request(method, url, **kwargs)
        self._budget.record_request()
        retrying = self._retrying(may_retry(method, {name.lower() for name in request.headers}))
        try:
            response: httpx2.Response = await retrying(self._send_once, request)
        except pybreaker.CircuitBreakerError as exc:
            self._count("breaker_open")
            raise DependencyUnavailableError(
                f"{self.dependency.name} is failing; calls are paused for a while.",
                retry_after=max(1, round(self.dependency.breaker_reset_seconds)),
            ) from exc
        except ForbiddenDestinationError:
            self._count("refused")
            raise
        except httpx2.TransportError as exc:
            self._count("transport_error")
            raise DependencyUnavailableError(
                f"{self.dependency.name} did not answer in time ({type(exc).__name__})."
            ) from exc
        self._count("ok" if response.status_code < 500 else "error_status")
        return response

    def health_dependency(self) -> Dependency:
        """A readiness check for app.state.dependencies: GET health_path, once, no retries."""

        async def check() -> None:
            (await self._http.get(self.dependency.health_path)).raise_for_status()

        return Dependency(self.dependency.name, critical=self.dependency.critical, check=check)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send_once(self, request: httpx2.Request) -> httpx2.Response:
        try:
            with self.breaker.calling():
                response = await self._http.send(request)
                if response.status_code >= 500:
                    raise _UpstreamServerError(response)
        except _UpstreamServerError as server_error:
            return server_error.response
        return response

    def _retrying(self, allowed: bool) -> AsyncRetrying:
        retry = retry_if_exception_type(httpx2.TransportError) | retry_if_result(
            self._retry_response
        )
        return AsyncRetrying(
            retry=retry if allowed else retry_if_result(lambda _: False),
            stop=stop_after_attempt(self.dependency.max_retries + 1) | _BudgetSpent(self._budget),
            wait=self._wait,
            before_sleep=self._before_sleep,
            # After the last attempt: hand back its response, or raise its exception.
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        )

    def _retry_response(self, response: httpx2.Response) -> bool:
        if response.status_code not in RETRYABLE_STATUSES:
            return False
        # A Retry-After longer than our longest backoff: give the caller the answer instead.
        pause = retry_after_seconds(response.headers.get("retry-after"))
        return pause is None or pause <= self.dependency.backoff_cap

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            pause = retry_after_seconds(outcome.result().headers.get("retry-after"))
            if pause is not None:
                return pause
        return float(self._backoff(state))

    def _before_sleep(self, state: RetryCallState) -> None:
        OUTBOUND_RETRIES.labels(self.dependency.name).inc()
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "outbound_retry",
            dependency=self.dependency.name,
            attempt=state.attempt_number,
            delay_seconds=round(delay, 3),
        )

    def _count(self, outcome: str) -> None:
        OUTBOUND_REQUESTS.labels(self.dependency.name, outcome).inc()
