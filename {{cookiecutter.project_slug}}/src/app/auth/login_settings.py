"""Settings of the login rate limits (app/auth/login_limits.py, docs/authentication.md)."""

from __future__ import annotations

from pydantic import field_validator

from app.config.base import SettingsBase
from app.config.checks import normalised_rate


class LoginSettings(SettingsBase):
    """`LOGIN_RATE_LIMIT_PER_ACCOUNT` and `LOGIN_RATE_LIMIT_PER_IP` (`N/second|minute|hour`)."""

    # Login attempts per account (its email, case-folded) and per client IP (its IPv6 network),
    # counted whether they succeed or not; a success clears the account's count.
    login_rate_limit_per_account: str = "10/minute"
    login_rate_limit_per_ip: str = "30/minute"

    # Named apart from Settings._check_rate: a subclass method of the same name would replace it.
    @field_validator("login_rate_limit_per_account", "login_rate_limit_per_ip", mode="after")
    @classmethod
    def _check_login_rate(cls, value: str) -> str:
        return normalised_rate(value)
