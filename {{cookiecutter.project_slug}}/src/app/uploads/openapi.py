"""What the tus routes take, for the OpenAPI document (`openapi_extra` of each route).

The routes read their headers from the request (tus answers a missing or wrong one with its own
statuses: 412 for the version, 400 naming the header), so FastAPI cannot see them; these
declarations say what `protocol.py` parses. What a header cannot say in JSON Schema is in its
description: `Upload-Metadata` must carry base64 of UTF-8 text and an allowed file type.
"""

from __future__ import annotations

from typing import Any

from app.uploads.protocol import MAX_METADATA_CHARS, OFFSET_MEDIA_TYPE, TUS_VERSION

_DECIMAL = {"type": "string", "pattern": "^[0-9]{1,19}$"}

TUS_RESUMABLE: dict[str, Any] = {
    "name": "Tus-Resumable",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "enum": [TUS_VERSION]},
    "description": f"The tus version the client speaks: {TUS_VERSION} only. tus answers a "
    "missing or other version with 412 and `Tus-Version`.",
}
UPLOAD_LENGTH: dict[str, Any] = {
    "name": "Upload-Length",
    "in": "header",
    "required": True,
    "schema": _DECIMAL,
    "description": "The file's size in bytes, at most `Tus-Max-Size` (see OPTIONS; "
    "UPLOAD_MAX_BYTES). A larger one gets 413, as tus requires.",
}
UPLOAD_METADATA: dict[str, Any] = {
    "name": "Upload-Metadata",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "maxLength": MAX_METADATA_CHARS},
    "description": "Comma-separated `key value` pairs, each value base64 of UTF-8 text, keys "
    "unique (`[A-Za-z0-9_.-]`, up to 64). `filename` (1 to 255 printable characters) and "
    "`filetype` are required (400 naming the header otherwise); a `filetype` not on "
    "UPLOAD_ALLOWED_TYPES gets 415.",
}
UPLOAD_OFFSET: dict[str, Any] = {
    "name": "Upload-Offset",
    "in": "header",
    "required": True,
    "schema": _DECIMAL,
    "description": "Where these bytes go: the offset a HEAD reported (409 otherwise).",
}


def _bytes(required: bool, description: str) -> dict[str, Any]:
    schema = {"type": "string", "format": "binary"}
    return {
        "required": required,
        "description": description,
        "content": {OFFSET_MEDIA_TYPE: {"schema": schema}},
    }


CREATE: dict[str, Any] = {
    "parameters": [TUS_RESUMABLE, UPLOAD_LENGTH, UPLOAD_METADATA],
    "requestBody": _bytes(
        False,
        "The first bytes of the file (creation-with-upload). The bytes must match `filetype` "
        "(415 otherwise) and may not exceed `Upload-Length` (413).",
    ),
}
APPEND: dict[str, Any] = {
    "parameters": [TUS_RESUMABLE, UPLOAD_OFFSET],
    "requestBody": _bytes(
        True, "The next bytes of the file, at most what `Upload-Length` leaves (413 beyond)."
    ),
}
VERSIONED: dict[str, Any] = {"parameters": [TUS_RESUMABLE]}
