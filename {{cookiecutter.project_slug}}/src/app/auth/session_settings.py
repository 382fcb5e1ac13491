"""Settings of browser sessions: signing keys and token lifetimes (docs/authentication.md)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from app.auth.signing_keys import (
    DEV_SESSION_SIGNING_KEYS,
    SigningKeys,
    check_production_signing_keys,
    parse_signing_keys,
)
from app.config.base import SettingsBase, is_production


class SessionSettings(SettingsBase):
    """`SESSION_SIGNING_KEYS` and the lifetimes of the access and refresh tokens."""

    # `KID:SECRET[,KID:SECRET...]`: the first signs, the others only verify (until removed).
    session_signing_keys: SecretStr = SecretStr(DEV_SESSION_SIGNING_KEYS)
    # Minutes, not hours (SEC-TOKENS): also the longest a logged-out access token could live if
    # the per-request session check were removed.
    access_token_minutes: int = Field(default=10, ge=1, le=60)
    refresh_token_days: float = Field(default=14.0, gt=0, le=90)
    # Two tabs refreshing at once both present the same token; within this window the second
    # is served too, after it a used token revokes its whole family (at most 10 s, SEC-JWT).
    refresh_reuse_grace_seconds: float = Field(default=5.0, ge=0, le=10)

    @field_validator("session_signing_keys", mode="after")
    @classmethod
    def _check_signing_keys(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        keys = parse_signing_keys(value.get_secret_value())
        if is_production(info):
            check_production_signing_keys(keys)
        return value

    @property
    def signing_keys(self) -> SigningKeys:
        """The parsed keys (validated at start, so parsing again cannot fail)."""
        return _parsed(self.session_signing_keys.get_secret_value())


@lru_cache(maxsize=4)
def _parsed(raw: str) -> SigningKeys:
    # Every session request verifies a token: parse the setting once per value, not per request.
    return parse_signing_keys(raw)
