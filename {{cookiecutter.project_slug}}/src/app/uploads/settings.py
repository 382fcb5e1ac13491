"""Settings of the uploads feature (docs/uploads.md, docs/configuration.md "Uploads")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from app.config.base import SettingsBase, is_production

DEFAULT_ALLOWED_TYPES = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "text/csv",
]


class UploadSettings(SettingsBase):
    """Where uploads are stored, how large and of which types they may be, and the scanner."""

    upload_storage: Literal["local", "s3"] = "local"
    # Local backend: one file per upload under this folder.
    upload_dir: Path = Path("var/uploads")
    upload_max_bytes: int = Field(default=1 << 30, ge=1, le=1 << 40)
    upload_allowed_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_TYPES)
    )
    # Uploads a tenant may have in progress (created, not yet complete) at once.
    upload_max_concurrent: int = Field(default=10, ge=1, le=10_000)
    # An incomplete upload expires this long after its last PATCH; the purge then removes it.
    upload_expiry_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    # S3 backend: bucket, optional endpoint (MinIO, Ceph, moto) and credentials.
    upload_s3_bucket: str | None = Field(default=None, min_length=3, max_length=63)
    upload_s3_endpoint_url: str | None = None
    upload_s3_region: str = "us-east-1"
    upload_s3_access_key_id: SecretStr | None = None
    upload_s3_secret_access_key: SecretStr | None = None
    # clamd: `tcp://host:port` or `unix:///path/clamd.sock`. Unset outside production: `dev`
    # and the tests start one with the shipped test signature.
    clamd_address: str | None = None
    clamd_timeout: float = Field(default=30.0, gt=0, le=600)

    @field_validator("upload_allowed_types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("upload_allowed_types", mode="after")
    @classmethod
    def _check_types(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if item.count("/") != 1 or ";" in item]
        if bad or not value:
            raise ValueError("must be a comma-separated list of media types like image/png")
        return value

    @field_validator("upload_s3_bucket", mode="after")
    @classmethod
    def _bucket_for_s3(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("upload_storage") == "s3":
            raise ValueError("is required when UPLOAD_STORAGE=s3")
        return value

    @field_validator("clamd_address", mode="after")
    @classmethod
    def _check_clamd(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Unset: every upload stays quarantined (the scan task dead-letters), never served. In
        # production that is a service that can never clear an upload: a misconfiguration.
        if value is None:
            if is_production(info):
                raise ValueError("is required in production: without a scanner no upload is served")
            return None
        if not value.startswith(("tcp://", "unix://")):
            raise ValueError("must be tcp://HOST:PORT or unix:///PATH")
        return value
