"""API-CACHING: `If-None-Match` naming a route's `ETag` gets 304, for any route that sets one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Response
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from app.main import create_app
from app.middleware.conditional_get import ConditionalGetMiddleware
from app.settings import Settings

TAG = '"v3"'
CACHING = {"ETag": TAG, "Cache-Control": "private, no-cache"}


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    app = FastAPI()

    @app.api_route("/tagged", methods=["GET", "HEAD", "POST"])
    async def tagged() -> Response:
        return Response(b'{"n": 3}', headers=CACHING, media_type="application/json")

    @app.get("/weak")
    async def weak() -> Response:
        return Response(b'{"n": 3}', headers={"ETag": 'W/"v3"'}, media_type="application/json")

    @app.get("/untagged")
    async def untagged() -> Response:
        return Response(b'{"n": 3}', media_type="application/json")

    @app.get("/accepted")
    async def accepted() -> Response:
        return Response(b'{"n": 3}', status_code=202, headers=CACHING)

    @app.get("/streamed")
    async def streamed() -> StreamingResponse:
        return StreamingResponse(iter([b"one", b"two"]), headers=CACHING)

    app.add_middleware(ConditionalGetMiddleware)
    with TestClient(app) as test_client:
        yield test_client


@pytest.mark.parametrize("condition", [TAG, 'W/"v3"', '"v1", "v3"', ' W/"v2" ,"v3" ', "*"])
def test_a_named_tag_gets_304_with_the_caching_headers_and_no_body(
    client: TestClient, condition: str
) -> None:
    response = client.get("/tagged", headers={"If-None-Match": condition})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == TAG
    assert response.headers["cache-control"] == "private, no-cache"
    assert "content-type" not in response.headers
    assert "content-length" not in response.headers


@pytest.mark.parametrize("condition", [TAG, 'W/"v3"', '"v1", "v3"'])
def test_a_weak_etag_is_named_by_the_same_opaque_tag(client: TestClient, condition: str) -> None:
    """Weak comparison (RFC 9110 section 8.8.3.2) ignores `W/` on either side."""
    response = client.get("/weak", headers={"If-None-Match": condition})
    assert response.status_code == 304
    assert response.headers["etag"] == 'W/"v3"'
    assert client.get("/weak", headers={"If-None-Match": '"v4"'}).status_code == 200


def test_head_is_conditional_too(client: TestClient) -> None:
    assert client.head("/tagged", headers={"If-None-Match": TAG}).status_code == 304


@pytest.mark.parametrize(
    "condition", ['"v2"', '"v2", W/"v4"', '"v"', '""', "v3", '"v3", v4', '"v3']
)
def test_another_tag_or_a_malformed_header_gets_the_full_200(
    client: TestClient, condition: str
) -> None:
    response = client.get("/tagged", headers={"If-None-Match": condition})
    assert response.status_code == 200
    assert response.json() == {"n": 3}
    assert response.headers["etag"] == TAG


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/tagged", 200), ("GET", "/untagged", 200), ("GET", "/accepted", 202)],
)
def test_only_a_get_200_with_an_etag_is_conditional(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path, headers={"If-None-Match": "*"})
    assert response.status_code == status
    assert response.json() == {"n": 3}


def test_a_streamed_body_is_dropped_whole(client: TestClient) -> None:
    response = client.get("/streamed", headers={"If-None-Match": TAG})
    assert response.status_code == 304
    assert response.content == b""
    assert client.get("/streamed").content == b"onetwo"


def test_the_service_documents_if_none_match_on_a_note(settings: Settings) -> None:
    """The route no longer has the parameter; the OpenAPI document still tells clients of it."""
    operation = create_app(settings).openapi()["paths"]["/api/v1/notes/{note_id}"]["get"]
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert headers["If-None-Match"]["required"] is False
    assert "304" in operation["responses"]
