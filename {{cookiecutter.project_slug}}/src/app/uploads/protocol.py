"""The tus 1.0 wire format: the headers it defines, parsed strictly, and its errors.

Hand-written on purpose: the headers are a handful of integers and one base64 list, and the
Python tus servers on PyPI are whole frameworks (their own routing, storage and auth) that would
bypass this service's tenancy, limits and problem responses.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from starlette.datastructures import Headers

from app.http.errors import (
    ConflictError,
    DomainError,
    PreconditionFailedError,
    UnsupportedMediaTypeError,
)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration"
OFFSET_MEDIA_TYPE = "application/offset+octet-stream"
# Headers a browser's tus client must be allowed to read back (CORS `Access-Control-Expose-*`).
TUS_RESPONSE_HEADERS = "Location, Upload-Offset, Upload-Length, Upload-Expires, Tus-Resumable"
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_METADATA_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_METADATA_CHARS = 4096


class UnsupportedTusVersionError(PreconditionFailedError):
    slug = "tus-version-unsupported"
    title = "Unsupported tus version"

    def response_headers(self) -> dict[str, str]:
        return {"Tus-Version": TUS_VERSION}


class OffsetMismatchError(ConflictError):
    slug = "upload-offset-mismatch"
    title = "Upload-Offset does not match"


class TooManyUploadsError(ConflictError):
    slug = "too-many-uploads"
    title = "Too many uploads in progress"


class UploadGoneError(DomainError):
    status = 410
    slug = "upload-expired"
    title = "Upload expired"


class UploadNotReadyError(ConflictError):
    slug = "upload-not-downloadable"
    title = "Upload not downloadable"


class BadUploadHeaderError(DomainError):
    status = 400
    slug = "bad-upload-header"
    title = "Invalid tus header"


def require_tus_version(headers: Headers) -> None:
    """412 unless the request speaks tus 1.0.0 (every request but OPTIONS must say so)."""
    version = headers.get("tus-resumable")
    if version != TUS_VERSION:
        shown = "none" if version is None else version[:32]
        raise UnsupportedTusVersionError(
            f"Tus-Resumable is {shown}; this server speaks tus {TUS_VERSION} only."
        )


def non_negative(headers: Headers, name: str) -> int:
    """A required header holding a non-negative decimal integer, else 400 naming it."""
    value = headers.get(name)
    if value is None or not _DIGITS.match(value):
        raise BadUploadHeaderError(f"{name} must be a non-negative integer.", header=name)
    return int(value)


def require_offset_media_type(headers: Headers, method: str) -> None:
    """415 unless the body is `application/offset+octet-stream` (tus 1.0, PATCH)."""
    media = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != OFFSET_MEDIA_TYPE:
        raise UnsupportedMediaTypeError(
            f"Upload bytes are sent as {OFFSET_MEDIA_TYPE}, not {media[:64] or 'none'}.",
            method=method,
            accepted=OFFSET_MEDIA_TYPE,
        )


@dataclass(frozen=True)
class UploadMetadata:
    filename: str
    content_type: str


def _decode(key: str, value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise BadUploadHeaderError(
            f"Upload-Metadata {key} is not base64 of UTF-8 text.", header="Upload-Metadata"
        ) from None


def parse_metadata(raw: str | None) -> UploadMetadata:
    """`Upload-Metadata: filename <b64>,filetype <b64>`; both required here."""
    pairs: dict[str, str] = {}
    if raw is not None and len(raw) > MAX_METADATA_CHARS:
        raise BadUploadHeaderError("Upload-Metadata is too long.", header="Upload-Metadata")
    for item in (raw or "").split(","):
        key, _, value = item.strip().partition(" ")
        if not key:
            continue
        if not _METADATA_KEY.match(key) or key in pairs:
            raise BadUploadHeaderError(
                "Upload-Metadata keys must be unique ASCII words.", header="Upload-Metadata"
            )
        pairs[key] = _decode(key, value.strip())
    filename = pairs.get("filename", "").strip()
    content_type = pairs.get("filetype", "").partition(";")[0].strip().lower()
    if not filename or not content_type:
        raise BadUploadHeaderError(
            "Upload-Metadata must carry `filename` and `filetype` (base64).",
            header="Upload-Metadata",
        )
    if len(filename) > 255 or any(ord(char) < 32 for char in filename):
        raise BadUploadHeaderError(
            "The filename must be at most 255 printable characters.", header="Upload-Metadata"
        )
    return UploadMetadata(filename=filename, content_type=content_type)


def check_offset(claimed: int, actual: int) -> None:
    if claimed != actual:
        raise OffsetMismatchError(
            f"Upload-Offset is {claimed} but the server has {actual} bytes; HEAD the upload "
            "and resume from its offset.",
            offset=actual,
        )
