"""The storage backend UPLOAD_STORAGE names."""

from __future__ import annotations

from app.uploads.s3_storage import S3Storage
from app.uploads.settings import UploadSettings
from app.uploads.storage import LocalStorage, UploadStorage


def build_storage(settings: UploadSettings) -> UploadStorage:
    if settings.upload_storage == "s3":
        return S3Storage(settings)
    return LocalStorage(settings.upload_dir)
