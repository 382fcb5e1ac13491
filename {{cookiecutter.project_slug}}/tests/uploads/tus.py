"""A tiny tus client over TestClient or httpx, for the protocol tests (the real clients, tuspy
and tus-js-client, have their own tests)."""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi.testclient import TestClient

from app.tenants.service import NewTenant

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"
PNG_HEAD = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 64
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def auth(tenant: NewTenant) -> dict[str, str]:
    return {"Authorization": f"Bearer {tenant.api_key}", **TUS}


def metadata(filename: str = "notes.txt", filetype: str = "text/plain") -> str:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return f"filename {b64(filename)},filetype {b64(filetype)}"


def create(
    client: TestClient,
    tenant: NewTenant,
    length: int,
    filename: str = "notes.txt",
    filetype: str = "text/plain",
) -> str:
    """POST an upload; returns its Location."""
    response = client.post(
        "/api/v1/uploads",
        headers={
            **auth(tenant),
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(filename, filetype),
        },
    )
    assert response.status_code == 201, response.text
    return str(response.headers["location"])


def patch(client: TestClient, tenant: NewTenant, location: str, offset: int, data: bytes) -> int:
    """PATCH `data` at `offset`; returns the status."""
    response = client.patch(
        location,
        content=data,
        headers={**auth(tenant), "Upload-Offset": str(offset), "Content-Type": OCTETS},
    )
    return response.status_code


def offset_of(client: TestClient, tenant: NewTenant, location: str) -> int:
    response = client.head(location, headers=auth(tenant))
    assert response.status_code == 200, response.status_code
    return int(response.headers["upload-offset"])


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]
