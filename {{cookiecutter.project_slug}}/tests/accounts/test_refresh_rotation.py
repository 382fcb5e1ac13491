"""SEC-JWT over real HTTP: refresh rotates, a rotated token's reuse revokes the whole family
(logged as a security event), two tabs within the grace window are served, and a refresh token
without its device cookie is refused."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from app.dev.services import ServiceUrls
from app.tenants.service import NewTenant
from tests.accounts.browser import Browser, browser, session_service
from tests.accounts.conftest import PASSWORD, Member
from tests.faults.traffic import ServiceRun

REFRESH = "/api/v1/auth/refresh"
SESSION = "/api/v1/auth/session"
GRACE_SECONDS = 1.0  # REFRESH_REUSE_GRACE_SECONDS of session_service


@pytest.fixture(scope="module")
def service(service_urls: ServiceUrls) -> Iterator[ServiceRun]:
    with session_service(service_urls) as run:
        yield run


@pytest.fixture
def member(new_tenant: Callable[[], NewTenant], add_member: Callable[..., Member]) -> Member:
    return add_member(new_tenant().tenant_id)


@pytest.fixture
def signed_in(service: ServiceRun, member: Member) -> Iterator[Browser]:
    with browser(service.base_url) as opened:
        assert opened.login(member.email, PASSWORD).status_code == 200
        yield opened


def _cookies(**values: str | None) -> dict[str, str]:
    names = {"refresh": "__Secure-refresh", "device": "__Host-device", "access": "__Host-access"}
    return {"Cookie": "; ".join(f"{names[k]}={v}" for k, v in values.items() if v is not None)}


def test_refresh_rotates_both_cookies_and_answers_no_token(signed_in: Browser) -> None:
    access = signed_in.cookie("__Host-access")
    refresh = signed_in.cookie("__Secure-refresh")
    response = signed_in.post(REFRESH)
    assert response.status_code == 200, response.text
    new_access = signed_in.cookie("__Host-access")
    new_refresh = signed_in.cookie("__Secure-refresh")
    assert new_access not in (None, access)
    assert new_refresh not in (None, refresh)
    assert str(new_access) not in response.text
    assert str(new_refresh) not in response.text
    assert signed_in.get(SESSION).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(
    signed_in: Browser, service: ServiceRun
) -> None:
    stolen = signed_in.cookie("__Secure-refresh")
    device = signed_in.cookie("__Host-device")
    assert signed_in.post(REFRESH).status_code == 200
    time.sleep(GRACE_SECONDS + 0.2)
    reused = signed_in.post(REFRESH, headers=_cookies(refresh=stolen, device=device))
    assert reused.status_code == 401
    # The newest token of the family dies too, and so does the access token it came with.
    assert signed_in.post(REFRESH).status_code == 401
    assert signed_in.get(SESSION).status_code == 401


def test_two_tabs_refreshing_within_the_grace_window_are_both_served(signed_in: Browser) -> None:
    shared = signed_in.cookie("__Secure-refresh")
    device = signed_in.cookie("__Host-device")
    first = signed_in.post(REFRESH, headers=_cookies(refresh=shared, device=device))
    second = signed_in.post(REFRESH, headers=_cookies(refresh=shared, device=device))
    assert (first.status_code, second.status_code) == (200, 200)
    # Not a reuse: the family lives on.
    assert signed_in.post(REFRESH).status_code == 200


def test_a_refresh_token_without_its_device_cookie_is_refused(
    signed_in: Browser, service: ServiceRun, member: Member
) -> None:
    refresh = signed_in.cookie("__Secure-refresh")
    assert signed_in.post(REFRESH, headers=_cookies(refresh=refresh)).status_code == 401
    with browser(service.base_url) as other:
        assert other.login(member.email, PASSWORD).status_code == 200
        foreign_device = other.cookie("__Host-device")
    wrong = signed_in.post(REFRESH, headers=_cookies(refresh=refresh, device=foreign_device))
    assert wrong.status_code == 401
    assert signed_in.post(REFRESH).status_code == 200  # with its own device cookie


def test_a_malformed_or_missing_refresh_cookie_is_a_401_problem(signed_in: Browser) -> None:
    for cookies in (_cookies(device="x"), _cookies(refresh="rt1.nope", device="x")):
        response = signed_in.post(REFRESH, headers=cookies)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"


def test_reuse_is_logged_as_a_security_event_and_no_secret_is_logged(
    service_urls: ServiceUrls, member: Member
) -> None:
    """Its own service, so its whole log can be read once it stopped."""
    grace = {"REFRESH_REUSE_GRACE_SECONDS": "0"}
    with session_service(service_urls, **grace) as run, browser(run.base_url) as visitor:
        visitor.login(member.email, "a wrong password for the log")
        extra = {"email": member.email, "password": PASSWORD, "remember": True}
        unknown_field = visitor.post("/api/v1/auth/login", json=extra)
        assert unknown_field.status_code == 422
        assert PASSWORD not in unknown_field.text
        assert visitor.login(member.email, PASSWORD).status_code == 200
        secrets_sent = [PASSWORD, "a wrong password for the log"]
        secrets_sent += [visitor.cookie(name) or "" for name in visitor.jar]
        stolen = visitor.cookie("__Secure-refresh")
        device = visitor.cookie("__Host-device")
        assert visitor.post(REFRESH).status_code == 200
        secrets_sent += [visitor.cookie(name) or "" for name in visitor.jar]
        visitor.post(REFRESH, headers=_cookies(refresh=stolen, device=device))
    events = run.log_events()
    reused = [event for event in events if event["event"] == "refresh_token_reused"]
    assert len(reused) == 1
    assert reused[0]["level"] == "warning"
    assert reused[0]["security_event"] is True
    assert reused[0]["user_id"] == str(member.user_id)
    log_text = "\n".join(run.stdout_lines) + run.stderr
    for secret in filter(None, secrets_sent):
        assert secret not in log_text
    # Not even the secret part of a refresh token (the tenant id before it is no secret).
    assert str(stolen).rsplit(".", 1)[1] not in log_text
