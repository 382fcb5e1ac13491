"""tus 1.0 at /api/v1/uploads (core, creation, creation-with-upload, termination, expiration),
and the download of files scanned clean. docs/uploads.md has the protocol and the states."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Coroutine
from email.utils import format_datetime
from typing import Any, cast
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request, Response, status
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute

from app.auth.principal import CurrentPrincipal
from app.auth.route_principals import PUBLIC
from app.http.locations import location_for
from app.http.routes import mount_router
from app.middleware.body_limit import CHUNKED, announced_body
from app.settings import Settings
from app.uploads import openapi
from app.uploads.models import Upload
from app.uploads.protocol import (
    TUS_EXTENSIONS,
    TUS_VERSION,
    non_negative,
    parse_metadata,
    require_offset_media_type,
    require_tus_version,
)
from app.uploads.service import UploadsService
from app.uploads.storage_backends import build_storage


async def _answer_of_the_app(request: Request, error: Exception) -> Response:
    """The response the app's exception handlers give `error`; raised on when none applies."""
    handlers = request.app.exception_handlers
    for kind in type(error).__mro__:
        if kind in handlers:
            answer = handlers[kind](request, error)
            return cast(Response, await answer if inspect.isawaitable(answer) else answer)
    raise error


class TusRoute(APIRoute):
    """tus 1.0: every response carries `Tus-Resumable`, refusals included (a client checks it
    before the status). A refusal raised anywhere in the route's handling (authentication,
    validation, the service) is rendered here by the app's own handlers and gets the header;
    those the middleware gives before any route is chosen (rate limit, overload) do not."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer_with_tus_version(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as error:  # noqa: BLE001 - re-raised unless the app renders it
                response = await _answer_of_the_app(request, error)
            response.headers.setdefault("Tus-Resumable", TUS_VERSION)
            return response

        return answer_with_tus_version


router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"], route_class=TusRoute)
# tus clients resume instead of retrying a POST with a key: a lost creation answer costs one
# abandoned empty upload, which expires and is purged (docs/uploads.md, "Idempotency").
TUS_IS_RESUMABLE = {
    "x-idempotency-exempt": "tus: a client that lost the answer creates a new upload and the "
    "abandoned one expires; bytes are resumed by offset, never re-sent by POST"
}


def _tus_headers(upload: Upload) -> dict[str, str]:
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Upload-Offset": str(upload.received_bytes),
        "Upload-Length": str(upload.length),
        "Cache-Control": "no-store",
    }
    if upload.expires_at is not None:
        headers["Upload-Expires"] = format_datetime(upload.expires_at, usegmt=True)
    return headers


def uploads_service(request: Request) -> UploadsService:
    """The service on the app's storage and database: a plain call in each route, not a
    `Depends` (why: `app.notes.service.notes_service`)."""
    settings: Settings = request.app.state.settings
    relay = request.app.state.outbox_relay
    return UploadsService(
        request.app.state.database,
        request.app.state.upload_storage,
        settings,
        body_timeout=settings.request_body_timeout,
        after_commit=relay.wake.set if relay is not None else (lambda: None),
    )


@router.options("", status_code=status.HTTP_204_NO_CONTENT, dependencies=[PUBLIC])
async def upload_options(request: Request) -> Response:
    """What this tus server supports. Carries no tenant data, so it needs no credentials."""
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(request.app.state.settings.upload_max_bytes),
    }
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=headers)


def _body_length(request: Request) -> int | None:
    announced = announced_body(request.scope)
    return None if announced in (None, CHUNKED) else announced


@router.post(
    "", status_code=status.HTTP_201_CREATED, openapi_extra={**TUS_IS_RESUMABLE, **openapi.CREATE}
)
async def create_upload(request: Request, principal: CurrentPrincipal) -> Response:
    """tus creation: `Upload-Length` and `Upload-Metadata` (`filename`, `filetype`). A body in
    `application/offset+octet-stream` holds the upload's first bytes (creation-with-upload)."""
    uploads = uploads_service(request)
    require_tus_version(request.headers)
    length = non_negative(request.headers, "Upload-Length")
    metadata = parse_metadata(request.headers.get("upload-metadata"))
    has_body = announced_body(request.scope) not in (None, 0)
    if has_body:
        require_offset_media_type(request.headers, "POST")
    upload = await uploads.create(principal, length, metadata)
    if has_body:
        upload = await uploads.append(
            principal, upload.id, 0, _body_length(request), request.stream()
        )
    headers = _tus_headers(upload)
    headers["Location"] = location_for(request, "upload_offset", upload_id=upload.id)
    return Response(status_code=status.HTTP_201_CREATED, headers=headers)


@router.head("/{upload_id}", name="upload_offset", openapi_extra=openapi.VERSIONED)
async def upload_offset(
    upload_id: uuid.UUID, request: Request, principal: CurrentPrincipal
) -> Response:
    """How many bytes the server has: the offset a client resumes from. Never cached."""
    uploads = uploads_service(request)
    require_tus_version(request.headers)
    upload = await uploads.get(principal, upload_id)
    return Response(status_code=status.HTTP_200_OK, headers=_tus_headers(upload))


@router.patch("/{upload_id}", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=openapi.APPEND)
async def append_to_upload(
    upload_id: uuid.UUID, request: Request, principal: CurrentPrincipal
) -> Response:
    """Append the body at `Upload-Offset` (409 when it is not the server's offset)."""
    uploads = uploads_service(request)
    require_tus_version(request.headers)
    require_offset_media_type(request.headers, "PATCH")
    offset = non_negative(request.headers, "Upload-Offset")
    upload = await uploads.append(
        principal, upload_id, offset, _body_length(request), request.stream()
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers=_tus_headers(upload))


@router.delete(
    "/{upload_id}", status_code=status.HTTP_204_NO_CONTENT, openapi_extra=openapi.VERSIONED
)
async def terminate_upload(
    upload_id: uuid.UUID, request: Request, principal: CurrentPrincipal
) -> Response:
    """tus termination: the upload and its stored bytes are deleted."""
    uploads = uploads_service(request)
    require_tus_version(request.headers)
    await uploads.terminate(principal, upload_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT, headers={"Tus-Resumable": TUS_VERSION})


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the exact name in `filename*` (RFC 6266, 8187)."""
    fallback = "".join(
        char if 32 <= ord(char) < 127 and char not in '"\\%' else "_" for char in filename
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get("/{upload_id}/content", response_class=StreamingResponse)
async def download_upload(
    upload_id: uuid.UUID, request: Request, principal: CurrentPrincipal
) -> StreamingResponse:
    """The file, streamed, once scanned clean (409 before, or when infected)."""
    uploads = uploads_service(request)
    upload, chunks = await uploads.content(principal, upload_id)
    headers = {
        "Content-Disposition": content_disposition(upload.filename),
        "Content-Length": str(upload.length),
        # X-Content-Type-Options: nosniff comes with every response (middleware/security_headers).
        "Cache-Control": "private, no-store",
    }
    return StreamingResponse(chunks, media_type=upload.content_type, headers=headers)


def install_uploads(app: FastAPI, settings: Settings) -> None:
    """Mount the routes; their bodies may be as large as UPLOAD_MAX_BYTES (and no other's)."""
    app.state.upload_storage = build_storage(settings)
    mount_router(app, router, max_body_size=settings.upload_max_bytes)
