"""SEC-TOKENS over real HTTP: login sets HttpOnly, Secure, SameSite cookies and never puts a token
in a body; unknown email and wrong password answer alike; login is rate limited."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest

from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant
from tests.accounts.browser import Browser, SetCookie, browser, session_service
from tests.accounts.conftest import PASSWORD, Member
from tests.faults.traffic import ServiceRun

PER_ACCOUNT = 4


@pytest.fixture(scope="module")
def service(service_urls: ServiceUrls) -> Iterator[ServiceRun]:
    with session_service(service_urls, LOGIN_RATE_LIMIT_PER_ACCOUNT=f"{PER_ACCOUNT}/minute") as run:
        yield run


@pytest.fixture
def visitor(service: ServiceRun) -> Iterator[Browser]:
    with browser(service.base_url) as opened:
        yield opened


@pytest.fixture
def member(new_tenant: Callable[[], NewTenant], add_member: Callable[..., Member]) -> Member:
    return add_member(new_tenant().tenant_id)


def _last(visitor: Browser, name: str) -> SetCookie:
    return [cookie for cookie in visitor.seen if cookie.name == name][-1]


def _flags(cookie: SetCookie) -> dict[str, str]:
    return {key: value.lower() for key, value in cookie.attributes.items()}


def test_login_sets_three_hardened_cookies_and_no_token_in_the_body(
    visitor: Browser, member: Member
) -> None:
    response = visitor.login(member.email, PASSWORD)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "user": {"id": str(member.user_id), "email": member.email},
        "tenant": {"id": str(member.tenant_id)},
        "role": "member",
    }
    assert response.headers["cache-control"] == "no-store"
    access, refresh, device = (
        _last(visitor, name) for name in ("__Host-access", "__Secure-refresh", "__Host-device")
    )
    for cookie in (access, refresh, device):
        assert cookie.value not in response.text
        flags = _flags(cookie)
        assert {"httponly", "secure"} <= set(flags)
        assert flags["samesite"] == "strict"
        assert "domain" not in flags  # host-only
    assert _flags(access)["path"] == "/"
    assert _flags(access)["max-age"] == str(10 * 60)  # ACCESS_TOKEN_MINUTES: minutes, not hours
    assert _flags(refresh)["path"] == "/api/v1/auth"
    assert _flags(refresh)["max-age"] == str(14 * 86400)
    assert _flags(device)["path"] == "/"
    header = jwt.get_unverified_header(access.value)
    assert (header["alg"], header["kid"]) == ("HS256", "k-old")
    claims = jwt.decode(access.value, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 600
    assert (claims["sub"], claims["tid"]) == (str(member.user_id), str(member.tenant_id))


def test_the_session_cookie_authenticates_and_a_missing_one_is_401(
    visitor: Browser, member: Member
) -> None:
    assert visitor.get("/api/v1/auth/session").status_code == 401
    visitor.login(member.email, PASSWORD)
    response = visitor.get("/api/v1/auth/session")
    assert response.status_code == 200
    assert response.json()["user"]["id"] == str(member.user_id)
    assert response.json()["role"] == "member"


def _comparable(response: Any) -> tuple[int, str, str | None]:
    body = response.json()
    for per_request in ("instance", "correlation_id"):
        body.pop(per_request)
    return (
        response.status_code,
        json.dumps(body, sort_keys=True),
        response.headers.get("www-authenticate"),
    )


def _timed_login(visitor: Browser, email: str, password: str) -> tuple[float, Any]:
    started = time.perf_counter()
    response = visitor.login(email, password)
    return time.perf_counter() - started, response


def test_unknown_email_and_wrong_password_answer_identically(
    visitor: Browser, member: Member
) -> None:
    """Same status, same body, same headers; the unknown email pays the same argon2 work."""
    wrong = [_timed_login(visitor, member.email, "not the password at all") for _ in range(3)]
    unknown = [_timed_login(visitor, f"x{member.email}", PASSWORD) for _ in range(3)]
    answers = {_comparable(response) for _, response in wrong + unknown}
    assert len(answers) == 1
    status, body, _ = answers.pop()
    assert status == 401
    assert json.loads(body)["type"].endswith("/invalid-credentials")
    # Comparable time: without the dummy verification an unknown email answers ~20x faster.
    wrong_time = statistics.median(seconds for seconds, _ in wrong)
    unknown_time = statistics.median(seconds for seconds, _ in unknown)
    assert unknown_time > wrong_time / 2


def test_a_burst_of_logins_for_one_account_gets_429_with_retry_after(
    visitor: Browser, member: Member
) -> None:
    """Past LOGIN_RATE_LIMIT_PER_ACCOUNT attempts even the right password is not checked."""
    guesses = [visitor.login(member.email, f"guess number {n}") for n in range(PER_ACCOUNT)]
    assert [guess.status_code for guess in guesses] == [401] * PER_ACCOUNT
    limited = visitor.login(member.email, PASSWORD)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
    assert not limited.headers.get_list("set-cookie")
