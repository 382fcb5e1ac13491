"""What every group of settings shares: the model configuration and `ENVIRONMENT`.

A feature keeps its own settings in a class of its own (say `app.uploads.settings`) deriving from
`SettingsBase`, and `app.settings.Settings` derives from every group. Pydantic puts a base class's
fields first, so `environment` is validated before any group's field and a validator can ask
`is_production(info)` to decide what production refuses.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ValidationInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


def is_production(info: ValidationInfo) -> bool:
    """Inside a field validator: whether the environment being validated is production."""
    return info.data.get("environment") == "production"


class SettingsBase(BaseSettings):
    """The shared base of `Settings` and of every feature's settings group."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", hide_input_in_errors=True, validate_default=True
    )

    # First of all fields: the validators read it to decide what production refuses.
    environment: Environment = "development"
