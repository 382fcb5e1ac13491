"""Typed settings read from the environment.

Every problem is collected and reported at once, and no message ever contains a submitted value:
a malformed URL may still hold a password.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from app.auth.key_cache_settings import KeyCacheSettings
from app.auth.login_settings import LoginSettings
from app.auth.session_settings import SessionSettings
from app.config.base import SettingsBase, is_production
from app.config.checks import (
    DEV_SECRET_KEY,
    DEV_SUPPORT_URL,
    REDIS_SCHEMES,
    ConfigError,
    check_production_secret_key,
    check_redelivery_timeout,
    check_visibility_timeout,
    distribution_name,
    normalised_rate,
    postgres_url,
    problems_from,
    same_role,
    split_list,
)
from app.middleware.csrf_settings import CsrfSettings
from app.uploads.settings import UploadSettings

__all__ = [
    "ConfigError",
    "IPNetwork",
    "Settings",
    "get_settings",
    "load_settings",
    "require_service_urls",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# Feature groups of settings (each a `SettingsBase` in its feature's folder) go before SettingsBase.
class Settings(
    KeyCacheSettings, LoginSettings, SessionSettings, CsrfSettings, UploadSettings, SettingsBase
):
    """The service's whole configuration. Field names are the environment variable names."""

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
    # IPv6 clients are rate-limited per network of this prefix length (one host gets a /64).
    rate_limit_ipv6_prefix: int = Field(default=64, ge=32, le=128)
    # Peers whose `traceparent` sampled flag is followed; everyone else's is decided locally.
    tracing_trusted_peers: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    # Where GET /metrics is served: its own port, or the API port behind a bearer token.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    metrics_token: SecretStr | None = None
    task_max_retries: int = Field(default=5, ge=0, le=50)
    task_retry_base_delay: float = Field(default=2.0, gt=0, le=3600)
    task_retry_max_delay: float = Field(default=60.0, gt=0, le=86400)
    worker_metrics_port: int = Field(default=9101, ge=1, le=65535)
    task_queue: str = Field(default="tasks", pattern=r"^[A-Za-z0-9._:-]{1,64}$")
    task_soft_time_limit: int = Field(default=60, ge=1, le=86_400)
    task_time_limit: int = Field(default=90, ge=1, le=86_400)
    # After the limits above: its validator checks it outlasts any countdown plus run time.
    task_visibility_timeout: int = Field(default=300, ge=60, le=7 * 86_400)
    # After the task limits: its validator checks it outlasts one task's attempts and retries.
    outbox_redelivery_timeout: int = Field(default=900, ge=60, le=7 * 86_400)
    dead_letter_retention_days: float = Field(default=30.0, gt=0, le=3650)
    readiness_timeout: float = Field(default=2.0, gt=0, le=30)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_statement_timeout_ms: int = Field(default=5_000, ge=100, le=600_000)
    db_lock_timeout_ms: int = Field(default=2_000, ge=10, le=600_000)
    db_idle_in_transaction_timeout_ms: int = Field(default=10_000, ge=100, le=3_600_000)
    db_max_transaction_attempts: int = Field(default=3, ge=1, le=10)
    redis_key_prefix: str | None = Field(default=None, max_length=64)
    idempotency_retention_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # Bounded input at the HTTP edge (docs/configuration.md, "Request limits").
    max_request_body_bytes: int = Field(default=1_048_576, ge=1024, le=1 << 30)
    max_request_header_bytes: int = Field(default=16_384, ge=1024, le=1_048_576)
    max_request_headers: int = Field(default=100, ge=10, le=1000)
    header_read_timeout: float = Field(default=10.0, gt=0, le=300)
    request_body_timeout: float = Field(default=30.0, gt=0, le=3600)
    keep_alive_timeout: int = Field(default=5, ge=1, le=300)
    max_concurrent_requests: int = Field(default=200, ge=1, le=100_000)
    public_base_url: AnyHttpUrl | None = None
    # Internal networks (loopback, private, ...) webhooks may reach anyway: development and tests
    # only, production refuses any (docs/webhooks.md, "Internal destinations are refused").
    webhook_allowed_networks: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_owner_url", "database_url", mode="after")
    @classmethod
    def _check_postgres(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            if is_production(info):
                raise ValueError("is required in production")
            return None
        url = postgres_url(value.get_secret_value())
        owner = info.data.get("database_owner_url")
        if (
            info.field_name == "database_url"
            and is_production(info)
            and owner is not None
            and same_role(url, owner.get_secret_value())
        ):
            raise ValueError("must be a runtime role, not the owner role of DATABASE_OWNER_URL")
        return SecretStr(url)

    @field_validator("redis_url", "celery_broker_url", mode="after")
    @classmethod
    def _check_redis(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is None:
            if is_production(info) and info.field_name == "redis_url":
                raise ValueError("is required in production")
            return None
        raw = value.get_secret_value()
        if info.field_name == "redis_url" and not raw.startswith(REDIS_SCHEMES):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("secret_key", mode="after")
    @classmethod
    def _check_secret_key(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        if is_production(info):
            check_production_secret_key(value.get_secret_value())
        return value

    @field_validator("support_url", mode="after")
    @classmethod
    def _check_support_url(cls, value: AnyHttpUrl, info: ValidationInfo) -> AnyHttpUrl:
        if is_production(info) and str(value) == DEV_SUPPORT_URL:
            raise ValueError("still holds the development default")
        return value

    @field_validator("public_base_url", mode="after")
    @classmethod
    def _check_public_base_url(cls, value: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if value is not None and (value.query or value.fragment or value.username):
            raise ValueError("must be a plain base URL: no query, fragment or credentials")
        return value

    @field_validator("rate_limit_per_ip", "rate_limit_per_principal", mode="after")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        return normalised_rate(value)

    @field_validator("task_time_limit", mode="after")
    @classmethod
    def _hard_after_soft(cls, value: int, info: ValidationInfo) -> int:
        if value <= info.data.get("task_soft_time_limit", 0):
            raise ValueError("must exceed TASK_SOFT_TIME_LIMIT, or the soft limit never fires")
        return value

    @field_validator("task_visibility_timeout", mode="after")
    @classmethod
    def _outlasts_retries(cls, value: int, info: ValidationInfo) -> int:
        # A missing limit is a bad variable, reported on its own: count it as 0 here.
        check_visibility_timeout(
            value, info.data.get("task_retry_max_delay", 0), info.data.get("task_time_limit", 0)
        )
        return value

    @field_validator("outbox_redelivery_timeout", mode="after")
    @classmethod
    def _outlasts_attempts(cls, value: int, info: ValidationInfo) -> int:
        names = ("task_max_retries", "task_time_limit", "task_retry_max_delay")
        # A missing one is a bad variable, reported on its own: count it as 0 here.
        check_redelivery_timeout(value, *(info.data.get(name, 0) for name in names))
        return value

    @field_validator("metrics_token", mode="after")
    @classmethod
    def _check_metrics_token(cls, value: SecretStr | None, info: ValidationInfo) -> object:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        if value is not None and info.data.get("metrics_port") is not None:
            raise ValueError("set METRICS_PORT or METRICS_TOKEN, not both: the port has no token")
        return value

    @field_validator(
        "trusted_proxies", "tracing_trusted_peers", "webhook_allowed_networks", mode="before"
    )
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        return split_list(value)

    @field_validator("webhook_allowed_networks", mode="after")
    @classmethod
    def _no_internal_webhooks_in_production(
        cls, value: list[IPNetwork], info: ValidationInfo
    ) -> list[IPNetwork]:
        if value and is_production(info):
            raise ValueError(
                "must be empty in production: it lets webhooks reach internal networks (SSRF)"
            )
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


def load_settings() -> Settings:
    """Read and validate the environment, raising `ConfigError` naming every bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigError(problems_from(error)) from None


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
