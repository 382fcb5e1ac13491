"""Typed settings read from the environment.

Every problem is collected and reported at once, and no message ever contains a submitted value:
a malformed URL may still hold a password.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from importlib.metadata import packages_distributions
from typing import Annotated, Literal

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

Environment = Literal["development", "test", "production"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEV_SECRET_KEY = "dev-only-secret-key-change-me-in-production"  # noqa: S105 - refused in production
DEV_SUPPORT_URL = "https://support.example.com/"
_RATE = re.compile(r"^\s*([1-9][0-9]{0,8})\s*/\s*(second|minute|hour)\s*$")
_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"}
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def distribution_name() -> str:
    """The installed project's name (`acme-service`), used as the default service name."""
    names = packages_distributions().get("app") or ["app"]
    return names[0]


class ConfigError(Exception):
    """Raised when the environment does not describe a runnable service.

    `problems` maps each environment variable to what is wrong with it. The message never
    includes a value.
    """

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        lines = [f"  {name}: {why}" for name, why in sorted(problems.items())]
        super().__init__("invalid configuration:\n" + "\n".join(lines))


def _is_production(info: ValidationInfo) -> bool:
    return info.data.get("environment") == "production"


def _postgres_url(raw: str) -> str:
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


class Settings(BaseSettings):
    """The service's whole configuration. Field names are the environment variable names."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", hide_input_in_errors=True, validate_default=True
    )

    # `environment` comes first: the validators below read it to decide what production refuses.
    environment: Environment = "development"
    service_name: str = Field(default_factory=distribution_name, min_length=1, max_length=64)
    database_owner_url: SecretStr | None = None
    # After the owner URL, so its validator can refuse a runtime role that is the owner.
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    celery_broker_url: SecretStr | None = None
    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] | None = None
    support_url: AnyHttpUrl = AnyHttpUrl(DEV_SUPPORT_URL)
    api_docs_enabled: bool | None = None
    rate_limit_per_ip: str = "600/minute"
    rate_limit_per_principal: str = "1200/minute"
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    task_max_retries: int = Field(default=5, ge=0, le=50)
    task_retry_base_delay: float = Field(default=2.0, gt=0, le=3600)
    task_retry_max_delay: float = Field(default=600.0, gt=0, le=86400)
    worker_metrics_port: int = Field(default=9101, ge=1, le=65535)
    task_queue: str = Field(default="tasks", pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    task_soft_time_limit: int = Field(default=60, ge=1, le=86_400)
    task_time_limit: int = Field(default=90, ge=1, le=86_400)
    # After the limits above: its validator checks it outlasts any countdown plus run time.
    task_visibility_timeout: int = Field(default=3600, ge=60, le=7 * 86_400)
    dead_letter_retention_days: float = Field(default=30.0, gt=0, le=3650)
    readiness_timeout: float = Field(default=2.0, gt=0, le=30)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_statement_timeout_ms: int = Field(default=5_000, ge=100, le=600_000)
    db_lock_timeout_ms: int = Field(default=2_000, ge=10, le=600_000)
    db_idle_in_transaction_timeout_ms: int = Field(default=10_000, ge=100, le=3_600_000)
    db_max_transaction_attempts: int = Field(default=3, ge=1, le=10)
    redis_key_prefix: str | None = Field(default=None, max_length=64)
    idempotency_retention_hours: float = Field(default=24.0, gt=0, le=24 * 30)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_owner_url", "database_url", mode="after")
    @classmethod
    def _check_postgres(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            if _is_production(info):
                raise ValueError("is required in production")
            return None
        url = _postgres_url(value.get_secret_value())
        owner = info.data.get("database_owner_url")
        if (
            info.field_name == "database_url"
            and _is_production(info)
            and owner is not None
            and make_url(url).username == make_url(owner.get_secret_value()).username
        ):
            raise ValueError("must be a runtime role, not the owner role of DATABASE_OWNER_URL")
        return SecretStr(url)

    @field_validator("redis_url", "celery_broker_url", mode="after")
    @classmethod
    def _check_redis(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            if _is_production(info) and info.field_name == "redis_url":
                raise ValueError("is required in production")
            return None
        raw = value.get_secret_value()
        if info.field_name == "redis_url" and not raw.startswith(_REDIS_SCHEMES):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("secret_key", mode="after")
    @classmethod
    def _check_secret_key(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if _is_production(info):
            if value.get_secret_value() == DEV_SECRET_KEY:
                raise ValueError("still holds the development default")
            if len(value.get_secret_value()) < 32:
                raise ValueError("must be at least 32 characters in production")
        return value

    @field_validator("support_url", mode="after")
    @classmethod
    def _check_support_url(cls, value: AnyHttpUrl, info: ValidationInfo) -> AnyHttpUrl:
        if _is_production(info) and str(value) == DEV_SUPPORT_URL:
            raise ValueError("still holds the development default")
        return value

    @field_validator("rate_limit_per_ip", "rate_limit_per_principal", mode="after")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        if not _RATE.match(value):
            raise ValueError("must look like N/second, N/minute or N/hour")
        return value.replace(" ", "")

    @field_validator("task_time_limit", mode="after")
    @classmethod
    def _hard_after_soft(cls, value: int, info: ValidationInfo) -> int:
        if value <= info.data.get("task_soft_time_limit", 0):
            raise ValueError("must exceed TASK_SOFT_TIME_LIMIT, or the soft limit never fires")
        return value

    @field_validator("task_visibility_timeout", mode="after")
    @classmethod
    def _outlasts_retries(cls, value: int, info: ValidationInfo) -> int:
        # With Redis as broker an unacked message is redelivered after this timeout; a retry
        # waiting longer (countdown) or a task running longer would then run twice.
        longest = float(info.data.get("task_retry_max_delay", 0)) + info.data.get(
            "task_time_limit", 0
        )
        if value <= longest:
            raise ValueError(
                "must exceed TASK_RETRY_MAX_DELAY + TASK_TIME_LIMIT, or tasks run twice"
            )
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def effective_log_format(self) -> Literal["json", "console"]:
        if self.log_format is not None:
            return self.log_format
        return "console" if self.environment == "development" else "json"

    @property
    def docs_enabled(self) -> bool:
        if self.api_docs_enabled is not None:
            return self.api_docs_enabled
        return not self.is_production

    @property
    def key_prefix(self) -> str:
        """Namespace of this service's Redis keys (default: the service name and a colon)."""
        return (
            self.redis_key_prefix if self.redis_key_prefix is not None else f"{self.service_name}:"
        )

    @property
    def broker_url(self) -> SecretStr | None:
        return self.celery_broker_url or self.redis_url


def _problems_from(error: ValidationError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for item in error.errors(include_input=False, include_url=False, include_context=False):
        name = str(item["loc"][0]).upper() if item["loc"] else "SETTINGS"
        message = str(item["msg"]).removeprefix("Value error, ")
        problems[name] = f"{problems[name]}; {message}" if name in problems else message
    return problems


def load_settings() -> Settings:
    """Read and validate the environment, raising `ConfigError` naming every bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigError(_problems_from(error)) from None


def require_service_urls(settings: Settings) -> None:
    """Serving needs PostgreSQL and Redis; development may leave them unset only for `dev`."""
    missing = {
        name: "is required to serve (`dev` starts embedded services instead)"
        for name, value in (
            ("DATABASE_URL", settings.database_url),
            ("REDIS_URL", settings.redis_url),
        )
        if value is None
    }
    if missing:
        raise ConfigError(missing)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, loaded once."""
    return load_settings()
