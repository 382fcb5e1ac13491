"""REL-RATELIMIT for browser sessions: a session's requests spend a per-principal quota, its user's
in its tenant, read from the access cookie only after its signature is verified."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import jwt
from fastapi import FastAPI

from app.auth.cookie_names import ACCESS_COOKIE
from app.auth.signing_keys import parse_signing_keys
from app.auth.tokens import AccessClaims, issue_access_token
from app.cache.connections import LeanRedis
from app.dev.services import ServiceUrls
from app.middleware.rate_limit import RateLimitMiddleware, api_key_identity, session_identity
from app.middleware.rate_limits import RateCounter
from app.tenants.service import NewTenant
from tests.accounts.browser import OLD_KEY, Browser, browser, session_service
from tests.accounts.conftest import PASSWORD, Member

KEYS = parse_signing_keys(OLD_KEY)


def _forged_for(victim: Member) -> str:
    """A well-formed access token naming `victim`, with a known `kid`, signed by the attacker."""
    now = datetime.now(UTC)
    claims = {
        "iss": "app",
        "aud": "app-session",
        "sub": str(victim.user_id),
        "email": victim.email,
        "tid": str(victim.tenant_id),
        "sid": str(uuid.uuid4()),
        "role": victim.role,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
    }
    secret = "attacker-chosen-secret-of-32-characters!"
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": "k-old"})


def _notes(visitor: Browser, count: int) -> list[int]:
    return [visitor.get("/api/v1/notes").status_code for _ in range(count)]


def test_a_session_user_has_one_principal_quota_and_a_forged_token_spends_none_of_it(
    service_urls: ServiceUrls,
    new_tenant: Callable[[], NewTenant],
    add_member: Callable[..., Member],
) -> None:
    """RATE_LIMIT_PER_PRINCIPAL=3/minute, one IP: Ann's 4th request is a 429 naming the
    principal policy, and a second login of hers shares that quota; Bob's is his own. Tokens
    forged to name Bob get 401 and never spend Bob's quota."""
    tenant_id = new_tenant().tenant_id
    ann, bob = add_member(tenant_id), add_member(tenant_id)
    with (
        session_service(service_urls, RATE_LIMIT_PER_PRINCIPAL="3/minute") as run,
        browser(run.base_url) as first,
        browser(run.base_url) as second,
        browser(run.base_url) as bobs,
    ):
        assert first.login(ann.email, PASSWORD).status_code == 200
        assert _notes(first, 3) == [200, 200, 200]
        limited = first.get("/api/v1/notes")
        assert second.login(ann.email, PASSWORD).status_code == 200
        assert _notes(second, 1) == [429]
        forged = {"Cookie": f"{ACCESS_COOKIE}={_forged_for(bob)}"}
        assert [first.get("/api/v1/notes", headers=forged).status_code for _ in range(4)] == [
            401
        ] * 4
        assert bobs.login(bob.email, PASSWORD).status_code == 200
        assert _notes(bobs, 3) == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json()["violated-policies"] == ["principal"]
    assert "retry-after" in limited.headers


def test_the_session_bucket_is_the_verified_user_in_its_tenant() -> None:
    """A token we signed names `user:<tenant>:<user>`; a forged, expired or foreign one none."""
    claims = AccessClaims(uuid.uuid4(), "ann@example.com", uuid.uuid4(), uuid.uuid4(), "member")
    token = issue_access_token(KEYS, claims, timedelta(minutes=10))
    expected = f"user:{claims.tenant_id.hex}:{claims.user_id.hex}"
    assert session_identity(KEYS, token.encode()) == expected
    past = datetime.now(UTC) - timedelta(hours=1)
    expired = issue_access_token(KEYS, claims, timedelta(minutes=10), now=past)
    member = Member(claims.user_id, claims.email, claims.tenant_id, claims.role)
    for refused in (expired, _forged_for(member), "eyJ.not.jwt"):
        assert session_identity(KEYS, refused.encode()) is None


def test_an_api_key_sent_as_the_cookie_does_not_unset_its_own_bucket(
    service_urls: ServiceUrls, new_tenant: Callable[[], NewTenant]
) -> None:
    """The memo of parsed credentials is kept per kind: a key first seen in the access cookie
    (no bucket there) still has its key bucket when it comes as `Authorization`."""
    counter = RateCounter(LeanRedis(service_urls.redis_url), "t:")
    middleware = RateLimitMiddleware(
        FastAPI(), counter, "1/second", "1/second", [], "https://support.example/", 64, KEYS
    )
    key = new_tenant().api_key
    as_cookie = {"headers": [(b"cookie", f"{ACCESS_COOKIE}={key}".encode())]}
    as_bearer = {"headers": [(b"authorization", f"Bearer {key}".encode())]}
    assert middleware._principal(as_cookie) is None
    assert middleware._principal(as_bearer) == api_key_identity(key.encode())
