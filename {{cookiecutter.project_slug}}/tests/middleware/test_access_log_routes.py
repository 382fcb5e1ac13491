"""OBS-LOGS: a request answered before routing (a 429) is logged with the route it was meant for."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

LogLines = Callable[[], list[dict[str, Any]]]


def test_a_rate_limited_request_is_logged_with_its_route_template(
    make_settings: Callable[..., Settings], log_lines: LogLines
) -> None:
    """The 429 line names `/api/v1/notes/{note_id}` (never `<unmatched>`, never the raw id)."""
    app = create_app(make_settings(rate_limit_per_ip="1/minute"))
    path = f"/api/v1/notes/{uuid.uuid4()}"
    with TestClient(app, raise_server_exceptions=False) as client:
        log_lines()
        client.get(path)
        assert client.get(path).status_code == 429
    requests = [line for line in log_lines() if line["event"] == "request"]
    limited = [line for line in requests if line["status"] == 429]
    assert [line["route"] for line in limited] == ["/api/v1/notes/{note_id}"]


def test_a_path_no_route_serves_stays_unmatched(
    make_settings: Callable[..., Settings], log_lines: LogLines
) -> None:
    """A 404 for a path no route serves is logged as `<unmatched>`, not as its raw path."""
    app = create_app(make_settings())
    with TestClient(app, raise_server_exceptions=False) as client:
        log_lines()
        assert client.get("/no/such/place").status_code == 404
    (line,) = [line for line in log_lines() if line["event"] == "request"]
    assert line["route"] == "<unmatched>"
