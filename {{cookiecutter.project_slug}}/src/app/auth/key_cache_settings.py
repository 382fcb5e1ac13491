"""Settings of the in-process cache of verified API keys (`ApiKeyCache`, docs/tenancy.md)."""

from __future__ import annotations

from pydantic import Field

from app.config.base import SettingsBase


class KeyCacheSettings(SettingsBase):
    """`KEY_CACHE_SECONDS`: how long a verified API key is trusted without the database."""

    # The longest a revoked key keeps working in a process that missed the revocation notice,
    # so it is bounded; 0 turns the cache off (every request verifies its key in a transaction
    # of its own: `make bench` measures that path this way).
    key_cache_seconds: float = Field(default=10.0, ge=0, le=60)
