"""`GET /health/live` (the process answers) and `GET /health/ready` (it can serve traffic)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.health.dependencies import Dependency, check_all
from app.http.errors import ServiceUnavailableError

router = APIRouter(prefix="/health", tags=["health"])


class Liveness(BaseModel):
    status: Literal["ok"]


class DependencyStatus(BaseModel):
    status: Literal["up", "down"]
    critical: bool
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "degraded"]
    checks: dict[str, DependencyStatus]


@router.get("/live", response_model=Liveness)
async def live() -> Liveness:
    """Answers while the event loop runs; it checks nothing else, so a restart cannot fix it."""
    return Liveness(status="ok")


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"description": "A critical dependency is down"}},
)
async def ready(request: Request) -> Readiness:
    """200 while every critical dependency answers (`degraded` if an optional one does not)."""
    dependencies: list[Dependency] = request.app.state.dependencies
    results = await check_all(dependencies, seconds=request.app.state.settings.readiness_timeout)
    checks = {
        result.name: DependencyStatus(
            status="up" if result.up else "down", critical=result.critical, error=result.error
        )
        for result in results
    }
    failed = sorted(
        f"{result.name} ({result.error})" for result in results if result.critical and not result.up
    )
    if failed:
        raise ServiceUnavailableError(
            f"critical dependency down: {'; '.join(failed)}",
            retry_after=5,
            checks={name: check.model_dump() for name, check in checks.items()},
        )
    all_up = all(result.up for result in results)
    return Readiness(status="ready" if all_up else "degraded", checks=checks)
