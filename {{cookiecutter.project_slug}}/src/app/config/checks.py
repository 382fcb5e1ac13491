"""The checks behind `app.settings`: what a value must look like, and the error that names it.

Kept apart from the `Settings` class so that it stays a readable list of fields. No message here
ever contains a submitted value: a malformed URL may still hold a password.
"""

from __future__ import annotations

import re
from importlib.metadata import packages_distributions

from pydantic import ValidationError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.config.secret_entropy import MIN_SECRET_KEY_BITS, estimated_entropy_bits

DEV_SECRET_KEY = "dev-only-secret-key-change-me-in-production"  # noqa: S105 - refused in production
DEV_SUPPORT_URL = "https://support.example.com/"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_RATE = re.compile(r"^\s*([1-9][0-9]{0,8})\s*/\s*(second|minute|hour)\s*$")
_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"}


class ConfigError(Exception):
    """Raised when the environment does not describe a runnable service.

    `problems` maps each environment variable to what is wrong with it. The message never
    includes a value.
    """

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        lines = [f"  {name}: {why}" for name, why in sorted(problems.items())]
        super().__init__("invalid configuration:\n" + "\n".join(lines))


def problems_from(error: ValidationError) -> dict[str, str]:
    """Each bad variable, upper-cased as in the environment, with every message about it."""
    problems: dict[str, str] = {}
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        name = str(item["loc"][0]).upper() if item["loc"] else "SETTINGS"
        message = str(item["msg"]).removeprefix("Value error, ")
        problems[name] = f"{problems[name]}; {message}" if name in problems else message
    return problems


def distribution_name() -> str:
    """The installed project's name (`acme-service`), used as the default service name."""
    names = packages_distributions().get("app") or ["app"]
    return names[0]


def postgres_url(raw: str) -> str:
    """Normalise any PostgreSQL URL to the asyncpg driver; never echo the input on failure."""
    try:
        url: URL = make_url(raw)
    except (ArgumentError, ValueError):
        raise ValueError("is not a valid PostgreSQL URL") from None
    if url.drivername not in _POSTGRES_DRIVERS:
        raise ValueError("must use the postgresql:// scheme")
    if not url.database:
        raise ValueError("must name a database")
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def same_role(url: str, other: str) -> bool:
    """Whether two PostgreSQL URLs log in as the same role."""
    return make_url(url).username == make_url(other).username


def check_production_secret_key(secret: str) -> None:
    """Production's secret key: not the default, long, and random-looking."""
    if secret == DEV_SECRET_KEY:
        raise ValueError("still holds the development default")
    if len(secret) < 32:
        raise ValueError("must be at least 32 characters in production")
    if estimated_entropy_bits(secret) < MIN_SECRET_KEY_BITS:
        raise ValueError(
            "does not look random; use 32 random bytes, e.g. "
            '`python -c "import secrets; print(secrets.token_urlsafe(32))"`'
        )


def normalised_rate(value: str) -> str:
    """`N/second|minute|hour` without spaces, or a ValueError."""
    if not _RATE.match(value):
        raise ValueError("must look like N/second, N/minute or N/hour")
    return value.replace(" ", "")


def split_list(value: object) -> object:
    """A comma-separated environment value as a list of its non-empty parts."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def check_visibility_timeout(value: int, retry_max_delay: float, time_limit: int) -> None:
    # With Redis as broker an unacked message is redelivered after this timeout; a retry
    # waiting longer (countdown) or a task running longer would then run twice.
    if value <= retry_max_delay + time_limit:
        raise ValueError("must exceed TASK_RETRY_MAX_DELAY + TASK_TIME_LIMIT, or tasks run twice")


def check_redelivery_timeout(value: int, retries: int, time_limit: int, max_delay: float) -> None:
    # The outbox relay re-publishes a row whose task has not finished after this long.
    if value <= (retries + 1) * time_limit + retries * max_delay:
        raise ValueError(
            "must exceed (TASK_MAX_RETRIES + 1) * TASK_TIME_LIMIT + "
            "TASK_MAX_RETRIES * TASK_RETRY_MAX_DELAY, or running tasks are published again"
        )
