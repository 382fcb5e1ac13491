"""UPLOADS: size, type (declared and sniffed) and concurrency limits, and the body limit that
grows for tus PATCHes only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.tenants.service import NewTenant
from tests.uploads.tus import (
    OCTETS,
    PNG_HEAD,
    auth,
    create,
    metadata,
    offset_of,
    patch,
    stored_files,
)

PROBLEM = "application/problem+json"
MIB = 1 << 20


def test_upload_length_over_the_limit_is_413(uploads_client: TestClient, alice: NewTenant) -> None:
    """Upload-Length over UPLOAD_MAX_BYTES is refused at creation."""
    response = uploads_client.post(
        "/api/v1/uploads",
        headers={**auth(alice), "Upload-Length": str((4 << 20) + 1), "Upload-Metadata": metadata()},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


def test_patch_past_the_upload_length_is_413(uploads_client: TestClient, alice: NewTenant) -> None:
    """A PATCH carrying more bytes than the upload has room for is refused, nothing stored."""
    location = create(uploads_client, alice, 4)
    response = uploads_client.patch(
        location,
        content=b"too many bytes",
        headers={**auth(alice), "Upload-Offset": "0", "Content-Type": OCTETS},
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert offset_of(uploads_client, alice, location) == 0


def test_declared_type_not_allowed_is_415(uploads_client: TestClient, alice: NewTenant) -> None:
    """A filetype outside UPLOAD_ALLOWED_TYPES is refused at creation."""
    response = uploads_client.post(
        "/api/v1/uploads",
        headers={
            **auth(alice),
            "Upload-Length": "3",
            "Upload-Metadata": metadata("run.exe", "application/x-msdownload"),
        },
    )
    assert response.status_code == 415
    assert response.json()["declared"] == "application/x-msdownload"


def test_bytes_contradicting_the_declared_type_are_415_and_removed(
    uploads_client: TestClient, alice: NewTenant, upload_dir: Path
) -> None:
    """Text declared as PNG, and a PNG declared as text: refused by the sniffed first bytes,
    and the upload with its bytes is gone."""
    fake_png = create(uploads_client, alice, 12, "photo.png", "image/png")
    assert patch(uploads_client, alice, fake_png, 0, b"just text...") == 415
    assert uploads_client.head(fake_png, headers=auth(alice)).status_code == 404
    hidden_png = create(uploads_client, alice, len(PNG_HEAD), "notes.txt", "text/plain")
    response = uploads_client.patch(
        hidden_png,
        content=PNG_HEAD,
        headers={**auth(alice), "Upload-Offset": "0", "Content-Type": OCTETS},
    )
    assert response.status_code == 415
    assert response.json()["sniffed"] == "image/png"
    assert stored_files(upload_dir) == []


def test_sniffing_waits_for_enough_bytes(uploads_client: TestClient, alice: NewTenant) -> None:
    """A first PATCH of one byte cannot slip a PNG past the check: the sniff runs once the
    head is complete, on the stored bytes plus the new ones."""
    location = create(uploads_client, alice, len(PNG_HEAD), "notes.txt", "text/plain")
    assert patch(uploads_client, alice, location, 0, PNG_HEAD[:1]) == 204
    assert patch(uploads_client, alice, location, 1, PNG_HEAD[1:]) == 415


def test_a_real_png_declared_as_png_is_accepted(
    uploads_client: TestClient, alice: NewTenant
) -> None:
    """The check refuses only contradictions."""
    location = create(uploads_client, alice, len(PNG_HEAD), "photo.png", "image/png")
    assert patch(uploads_client, alice, location, 0, PNG_HEAD) == 204


def test_concurrent_uploads_per_tenant_are_limited(
    upload_app: Callable[..., FastAPI], alice: NewTenant, bob: NewTenant
) -> None:
    """UPLOAD_MAX_CONCURRENT uploads in progress per tenant; a finished one frees its place;
    other tenants are not affected."""
    with TestClient(upload_app(upload_max_concurrent=2)) as client:
        first = create(client, alice, 1)
        create(client, alice, 1)
        refused = client.post(
            "/api/v1/uploads",
            headers={**auth(alice), "Upload-Length": "1", "Upload-Metadata": metadata()},
        )
        assert refused.status_code == 409
        assert refused.headers["content-type"] == PROBLEM
        create(client, bob, 1)
        assert patch(client, alice, first, 0, b"x") == 204
        create(client, alice, 1)


def test_patch_bodies_may_exceed_the_general_body_limit(
    upload_app: Callable[..., FastAPI], alice: NewTenant
) -> None:
    """MAX_REQUEST_BODY_BYTES (1 MiB) still bounds every other route, while a tus PATCH may
    carry up to UPLOAD_MAX_BYTES."""
    with TestClient(upload_app(upload_max_bytes=8 * MIB)) as client:
        location = create(client, alice, 3 * MIB)
        assert patch(client, alice, location, 0, b"a" * (3 * MIB)) == 204
        note = client.post(
            "/api/v1/notes",
            content=b'{"title": "' + b"a" * (2 * MIB) + b'"}',
            headers={
                "Authorization": f"Bearer {alice.api_key}",
                "Content-Type": "application/json",
                "Idempotency-Key": '"big"',
            },
        )
        assert note.status_code == 413
