"""SEC-CSRF: cookie-authenticated unsafe requests from another origin are refused before any work.

Against a real `serve` process over raw HTTP (the headers a browser sends, byte for byte), with a
real PostgreSQL behind it. The middleware runs before authentication, so any value in a session
cookie makes a request cookie-authenticated here; a request that passes the check then fails
authentication (401), which shows it reached the route. ALLOWED_ORIGINS validation and the
fallback to the request's own Host are tested on the settings (test_csrf_settings.py) and the
middleware directly.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from starlette.types import Message, Receive, Scope, Send

from app.auth.passwords import hash_password
from app.dev.services import ServiceUrls
from app.middleware.csrf import CsrfMiddleware
from app.tenants.admin import as_owner
from app.tenants.memberships import add_membership
from app.tenants.service import NewTenant
from tests.middleware.raw_http import Answer, exchange
from tests.processes import env_for, failed_start, free_port, start_app, wait_for_port

PUBLIC = "https://api.example.test"
FRONT_END = "https://app.example.test"
EVIL = "https://evil.example"
SESSION = "Cookie: theme=dark; __Host-access=anything"
NOTES = "/api/v1/notes"


@pytest.fixture(scope="module")
def port(service_urls: ServiceUrls) -> Iterator[int]:
    """A real `serve` whose public origin is PUBLIC and that allows the FRONT_END origin."""
    port = free_port()
    env = env_for(
        service_urls,
        PUBLIC_BASE_URL=f"{PUBLIC}/",
        ALLOWED_ORIGINS=f"{FRONT_END}, http://localhost:5173",
        LOG_LEVEL="WARNING",
    )
    process = start_app(["serve", "--port", str(port)], env)
    try:
        assert wait_for_port(port, process), failed_start(process)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def send(
    port: int, method: str, path: str, *fields: str, body: dict[str, str] | None = None
) -> Answer:
    """One request with a JSON body (and a fresh Idempotency-Key) when `body` is given."""
    payload = json.dumps(body).encode() if body is not None else b""
    lines = [f"{method} {path} HTTP/1.1", "Host: api.example.test", *fields]
    if body is not None:
        lines += [
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
            f'Idempotency-Key: "{uuid.uuid4()}"',
        ]
    return exchange(port, "\r\n".join([*lines, "", ""]).encode("latin-1") + payload)


def notes_titled(service_urls: ServiceUrls, title: str) -> int:
    """How many notes with this title PostgreSQL holds, in any tenant (read as the owner)."""

    async def count() -> int:
        engine = create_async_engine(service_urls.owner_database_url)
        try:
            async with engine.connect() as conn:
                sql = text("SELECT count(*) FROM notes WHERE title = :title")
                return int((await conn.execute(sql, {"title": title})).scalar_one())
        finally:
            await engine.dispose()

    return asyncio.run(count())


def assert_refused(answer: Answer) -> dict[str, object]:
    assert answer.status == 403, answer.body
    problem = answer.problem()
    assert str(problem["type"]).endswith("/problems/cross-origin-request")
    assert "ALLOWED_ORIGINS" in str(problem["detail"])
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "x-request-id" in answer.headers
    return problem


def test_a_cross_origin_write_with_a_session_cookie_is_403_and_writes_nothing(
    port: int, service_urls: ServiceUrls
) -> None:
    """The forged POST is refused before the route: no note row exists afterwards."""
    title = f"forged-{uuid.uuid4()}"
    answer = send(port, "POST", NOTES, SESSION, f"Origin: {EVIL}", body={"title": title})
    assert_refused(answer)
    assert notes_titled(service_urls, title) == 0


def signed_in_cookie(port: int, service_urls: ServiceUrls, tenant: NewTenant) -> str:
    """A `Cookie` field with the session cookies of a real login by a new member of `tenant`."""
    email, password = f"csrf-{uuid.uuid4().hex[:10]}@example.com", "plum orbit cactus lantern"

    async def add(session: AsyncSession) -> object:
        return await add_membership(
            session, email, hash_password(password), tenant.tenant_id, "member"
        )

    as_owner(service_urls.owner_database_url, add)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        body = json.dumps({"email": email, "password": password})
        connection.request("POST", "/api/v1/auth/login", body, {"Content-Type": "application/json"})
        login = connection.getresponse()
        assert login.status == 200, login.read()
        cookies = [line.split(";")[0] for line in login.msg.get_all("set-cookie") or []]
    finally:
        connection.close()
    return f"Cookie: {'; '.join(cookies)}"


def test_a_forged_write_with_a_real_session_is_403_and_the_same_write_from_an_allowed_origin_201(
    port: int, service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant]
) -> None:
    """A signed-in browser's cookies: from another origin nothing is written; the same request
    from the allowed front end creates the note, so the 403 was the origin, not the session."""
    cookie = signed_in_cookie(port, service_urls, new_tenant())
    title = f"forged-{uuid.uuid4()}"
    assert_refused(send(port, "POST", NOTES, cookie, f"Origin: {EVIL}", body={"title": title}))
    assert notes_titled(service_urls, title) == 0
    answer = send(port, "POST", NOTES, cookie, f"Origin: {FRONT_END}", body={"title": title})
    assert answer.status == 201, answer.body
    assert notes_titled(service_urls, title) == 1


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_every_unsafe_method_is_checked(port: int, method: str) -> None:
    """Not only POST: any method that may change state."""
    answer = send(port, method, f"{NOTES}/{uuid.uuid4()}", SESSION, f"Origin: {EVIL}")
    assert_refused(answer)


def test_origin_null_is_refused_and_named(port: int) -> None:
    """`Origin: null` (sandboxed frame, file:, cross-origin redirect) is another origin."""
    problem = assert_refused(send(port, "POST", NOTES, SESSION, "Origin: null", body={}))
    assert "null" in str(problem["detail"])


def test_another_origin_is_refused_whatever_sec_fetch_site_says(port: int) -> None:
    """Origin decides; a `Sec-Fetch-Site: same-origin` claim beside it changes nothing."""
    fields = (SESSION, f"Origin: {EVIL}", "Sec-Fetch-Site: same-origin")
    assert_refused(send(port, "POST", NOTES, *fields, body={"title": "x"}))


@pytest.mark.parametrize(
    "origin",
    [FRONT_END, PUBLIC, "http://localhost:5173"],
    ids=["allowed-origin", "own-origin", "allowed-dev-origin"],
)
def test_an_allowed_origin_passes(port: int, origin: str) -> None:
    """The service's own origin and ALLOWED_ORIGINS reach the route (401: the cookie is fake)."""
    fields = (SESSION, f"Origin: {origin}", "Sec-Fetch-Site: cross-site")
    assert send(port, "POST", NOTES, *fields, body={"title": "x"}).status == 401


@pytest.mark.parametrize("site", ["cross-site", "same-site", "none"])
def test_without_origin_only_same_origin_fetch_metadata_passes(port: int, site: str) -> None:
    """No Origin and a Sec-Fetch-Site other than same-origin: refused."""
    assert_refused(send(port, "POST", NOTES, SESSION, f"Sec-Fetch-Site: {site}", body={}))


@pytest.mark.parametrize("fields", [("Sec-Fetch-Site: same-origin",), ()], ids=["same", "none"])
def test_without_origin_same_origin_or_no_fetch_metadata_passes(
    port: int, fields: tuple[str, ...]
) -> None:
    """A same-origin fetch, or a program that sends no fetch metadata at all, is not refused."""
    assert send(port, "POST", NOTES, SESSION, *fields, body={"title": "x"}).status == 401


def test_an_api_key_request_with_a_foreign_origin_is_not_affected(
    port: int, new_tenant: Callable[[], NewTenant], service_urls: ServiceUrls
) -> None:
    """`Authorization` is no ambient credential: the request is served, cookie or not."""
    tenant = new_tenant()
    title = f"api-key-{uuid.uuid4()}"
    fields = (f"Authorization: Bearer {tenant.api_key}", SESSION, f"Origin: {EVIL}")
    assert send(port, "POST", NOTES, *fields, body={"title": title}).status == 201
    assert notes_titled(service_urls, title) == 1


def test_a_foreign_origin_without_cookies_is_not_checked_outside_auth(port: int) -> None:
    """No session cookie, no ambient credential: the route answers (401), not the check."""
    assert send(port, "POST", NOTES, f"Origin: {EVIL}", body={"title": "x"}).status == 401


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_safe_methods_are_not_checked(port: int, method: str) -> None:
    """Safe methods change nothing: a cross-origin read still meets authentication (401/405)."""
    answer = send(port, method, NOTES, SESSION, f"Origin: {EVIL}", "Sec-Fetch-Site: cross-site")
    assert answer.status in {401, 405}


def test_a_cross_origin_login_form_is_refused_without_cookies(port: int) -> None:
    """Login CSRF: unsafe requests under /api/v1/auth/ are checked even with no cookie."""
    body = {"email": "victim@example.com", "password": "attacker's password"}
    answer = send(port, "POST", "/api/v1/auth/login", f"Origin: {EVIL}", body=body)
    assert_refused(answer)
    assert "set-cookie" not in answer.headers
    same = send(port, "POST", "/api/v1/auth/login", f"Origin: {FRONT_END}", body=body)
    assert same.status != 403


REACHED_ROUTE = 299


async def _status_without_public_base_url(*headers: tuple[bytes, bytes]) -> int:
    """The status of a POST with `headers`, sent over plain HTTP to the middleware alone
    (no PUBLIC_BASE_URL, no ALLOWED_ORIGINS); REACHED_ROUTE when it passed the check."""
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": NOTES,
        "scheme": "http",
        "headers": list(headers),
    }
    sent: list[Message] = []

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        sent.append({"type": "http.response.start", "status": REACHED_ROUTE})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def record(message: Message) -> None:
        sent.append(message)

    await CsrfMiddleware(route, (), None, "https://support.test/")(scope, receive, record)
    return int(sent[0]["status"])


async def test_without_public_base_url_the_requests_own_host_is_allowed() -> None:
    """No PUBLIC_BASE_URL: `Origin` equal to the request's scheme and Host passes (default
    port or not); another port, scheme or host does not."""
    cookie = (b"cookie", b"__Host-access=x")
    host = (b"host", b"api.local:80")
    own = (b"origin", b"http://api.local")
    assert await _status_without_public_base_url(cookie, host, own) == REACHED_ROUTE
    for other in (b"http://api.local:8080", b"https://api.local", b"http://evil.local"):
        assert await _status_without_public_base_url(cookie, host, (b"origin", other)) == 403
