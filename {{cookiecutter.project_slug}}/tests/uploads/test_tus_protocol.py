"""UPLOADS: the tus 1.0 core, creation, creation-with-upload and termination, over HTTP."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.tenants.service import NewTenant
from tests.uploads.tus import OCTETS, TUS, auth, create, metadata, offset_of, patch, stored_files

PROBLEM = "application/problem+json"


def test_options_advertises_version_extensions_and_max_size(uploads_client: TestClient) -> None:
    """OPTIONS says which tus version, extensions and largest upload the server takes."""
    response = uploads_client.options("/api/v1/uploads")
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-resumable"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
    }
    assert response.headers["tus-max-size"] == str(4 << 20)


def test_create_then_resume_by_offset(uploads_client: TestClient, alice: NewTenant) -> None:
    """POST makes an upload at a relative Location; HEAD tells the offset; PATCHes append."""
    location = create(uploads_client, alice, 10)
    assert location.startswith("/api/v1/uploads/")
    head = uploads_client.head(location, headers=auth(alice))
    assert head.status_code == 200
    assert head.headers["upload-offset"] == "0"
    assert head.headers["upload-length"] == "10"
    assert head.headers["cache-control"] == "no-store"
    assert "upload-expires" in head.headers
    assert patch(uploads_client, alice, location, 0, b"hello") == 204
    assert offset_of(uploads_client, alice, location) == 5
    assert patch(uploads_client, alice, location, 5, b"world") == 204
    done = uploads_client.head(location, headers=auth(alice))
    assert done.headers["upload-offset"] == "10"
    assert "upload-expires" not in done.headers  # complete uploads do not expire


def test_creation_with_upload_stores_the_first_bytes(
    uploads_client: TestClient, alice: NewTenant
) -> None:
    """A POST body in application/offset+octet-stream is the upload's first bytes."""
    response = uploads_client.post(
        "/api/v1/uploads",
        content=b"first",
        headers={
            **auth(alice),
            "Upload-Length": "8",
            "Upload-Metadata": metadata(),
            "Content-Type": OCTETS,
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["upload-offset"] == "5"
    assert offset_of(uploads_client, alice, response.headers["location"]) == 5


def test_wrong_patch_media_type_is_415(uploads_client: TestClient, alice: NewTenant) -> None:
    """PATCH bodies must be application/offset+octet-stream."""
    location = create(uploads_client, alice, 4)
    response = uploads_client.patch(
        location,
        content=b"data",
        headers={**auth(alice), "Upload-Offset": "0", "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["accept-patch"] == OCTETS
    assert offset_of(uploads_client, alice, location) == 0


def test_offset_mismatch_is_409_and_stores_nothing(
    uploads_client: TestClient, alice: NewTenant
) -> None:
    """A PATCH at any offset but the server's is refused, naming the server's offset."""
    location = create(uploads_client, alice, 8)
    assert patch(uploads_client, alice, location, 0, b"abcd") == 204
    response = uploads_client.patch(
        location,
        content=b"efgh",
        headers={**auth(alice), "Upload-Offset": "2", "Content-Type": OCTETS},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["offset"] == 4
    assert offset_of(uploads_client, alice, location) == 4


def test_unsupported_tus_version_is_412(uploads_client: TestClient, alice: NewTenant) -> None:
    """A request without Tus-Resumable 1.0.0 gets 412 with the version the server speaks."""
    headers = {"Authorization": f"Bearer {alice.api_key}", "Upload-Length": "3"}
    for version in ({}, {"Tus-Resumable": "0.2.2"}):
        response = uploads_client.post(
            "/api/v1/uploads", headers={**headers, **version, "Upload-Metadata": metadata()}
        )
        assert response.status_code == 412
        assert response.headers["tus-version"] == "1.0.0"
        assert response.headers["content-type"] == PROBLEM


def test_bad_headers_are_400_naming_them(uploads_client: TestClient, alice: NewTenant) -> None:
    """A missing length or malformed metadata is a 400 problem naming the header."""
    no_length = uploads_client.post(
        "/api/v1/uploads", headers={**auth(alice), "Upload-Metadata": metadata()}
    )
    assert no_length.status_code == 400
    assert no_length.json()["header"] == "Upload-Length"
    bad_metadata = uploads_client.post(
        "/api/v1/uploads",
        headers={**auth(alice), "Upload-Length": "3", "Upload-Metadata": "filename !!!"},
    )
    assert bad_metadata.status_code == 400
    assert bad_metadata.json()["header"] == "Upload-Metadata"


def test_termination_removes_the_upload_and_its_bytes(
    uploads_client: TestClient, alice: NewTenant, upload_dir: Path
) -> None:
    """DELETE ends the upload: 404 afterwards, and nothing left in storage."""
    location = create(uploads_client, alice, 10)
    assert patch(uploads_client, alice, location, 0, b"part") == 204
    assert len(stored_files(upload_dir)) == 1
    assert uploads_client.delete(location, headers=auth(alice)).status_code == 204
    gone = uploads_client.head(location, headers=auth(alice))
    assert gone.status_code == 404
    assert stored_files(upload_dir) == []


def test_another_tenants_upload_is_404(
    uploads_client: TestClient, alice: NewTenant, bob: NewTenant
) -> None:
    """Bob cannot see, extend, download or delete Alice's upload: each answer is 404."""
    location = create(uploads_client, alice, 4)
    assert uploads_client.head(location, headers=auth(bob)).status_code == 404
    assert patch(uploads_client, bob, location, 0, b"evil") == 404
    assert uploads_client.get(f"{location}/content", headers=auth(bob)).status_code == 404
    deleted = uploads_client.delete(location, headers=auth(bob))
    assert deleted.status_code == 404
    assert deleted.headers["content-type"] == PROBLEM
    assert offset_of(uploads_client, alice, location) == 0


def test_uploads_need_credentials(uploads_client: TestClient) -> None:
    """No key, no upload."""
    response = uploads_client.post(
        "/api/v1/uploads", headers={**TUS, "Upload-Length": "3", "Upload-Metadata": metadata()}
    )
    assert response.status_code == 401


def test_every_answer_of_a_tus_route_says_tus_resumable(
    uploads_client: TestClient, alice: NewTenant, bob: NewTenant
) -> None:
    """tus 1.0: refusals carry `Tus-Resumable` too (401, 404, 409, 412, 415), not only successes."""
    location = create(uploads_client, alice, 8)
    answers = [
        uploads_client.post("/api/v1/uploads", headers={**TUS, "Upload-Length": "3"}),
        uploads_client.head(location, headers=auth(bob)),
        uploads_client.patch(
            location,
            content=b"x",
            headers={**auth(alice), "Upload-Offset": "3", "Content-Type": OCTETS},
        ),
        uploads_client.patch(
            location, content=b"x", headers={"Authorization": auth(alice)["Authorization"]}
        ),
        uploads_client.patch(
            location,
            content=b"x",
            headers={**auth(alice), "Upload-Offset": "0", "Content-Type": "text/plain"},
        ),
        uploads_client.get(f"{location}/content", headers=auth(alice)),
    ]
    assert [answer.status_code for answer in answers] == [401, 404, 409, 412, 415, 409]
    for answer in answers:
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["tus-resumable"] == "1.0.0", answer.status_code


def test_an_empty_upload_is_complete_at_creation(
    uploads_client: TestClient, alice: NewTenant
) -> None:
    """Upload-Length 0: tus clients send no PATCH, so the POST completes it (quarantined, its
    scan queued); an empty file declared as a type with magic bytes is refused."""
    location = create(uploads_client, alice, 0)
    head = uploads_client.head(location, headers=auth(alice))
    assert head.headers["upload-offset"] == head.headers["upload-length"] == "0"
    assert "upload-expires" not in head.headers
    early = uploads_client.get(f"{location}/content", headers=auth(alice))
    assert early.json()["upload_status"] == "quarantined"
    empty_png = uploads_client.post(
        "/api/v1/uploads",
        headers={
            **auth(alice),
            "Upload-Length": "0",
            "Upload-Metadata": metadata("a.png", "image/png"),
        },
    )
    assert empty_png.status_code == 415
    assert empty_png.json()["declared"] == "image/png"
