"""Each external dependency, declared critical or optional, with a way to check it.

Readiness fails only when a critical dependency is down: an optional one (Redis) being down
degrades features (rate limiting fails open, the cache is bypassed) but the service still serves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from app.observability.logging import get_logger

log = get_logger("app.health")


class DependencyNotReadyError(Exception):
    """A dependency answers but cannot serve; the message is safe to show and names the fix."""


@dataclass(frozen=True)
class Dependency:
    name: str
    critical: bool
    check: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class CheckResult:
    name: str
    critical: bool
    up: bool
    error: str | None = None


async def _run_check(dependency: Dependency, seconds: float) -> CheckResult:
    try:
        await asyncio.wait_for(dependency.check(), timeout=seconds)
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the type is reported
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        if isinstance(exc, DependencyNotReadyError):
            reason = str(exc)
        log.warning("dependency_down", dependency=dependency.name, reason=reason)
        return CheckResult(dependency.name, dependency.critical, up=False, error=reason)
    return CheckResult(dependency.name, dependency.critical, up=True)


async def check_all(dependencies: Sequence[Dependency], seconds: float) -> list[CheckResult]:
    """Check every dependency concurrently, each bounded by `seconds`."""
    return list(await asyncio.gather(*(_run_check(dep, seconds) for dep in dependencies)))
