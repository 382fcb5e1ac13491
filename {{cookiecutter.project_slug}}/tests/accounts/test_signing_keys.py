"""SEC-JWT signing keys: validated at start, verified by `kid` with the algorithm pinned, rotated
with `auth rotate-keys` (old kid verifies until retired; unknown or retired kid gets 401)."""

from __future__ import annotations

import json
import secrets
import uuid
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import ValidationError

from app.auth.signing_keys import DEV_SESSION_SIGNING_KEYS, parse_signing_keys
from app.auth.tokens import AccessClaims, issue_access_token, verify_access_token
from app.cli import main
from app.config.checks import problems_from
from app.dev.services import ServiceUrls
from app.settings import Settings
from app.tenants.service import NewTenant
from tests.accounts.browser import NEW_KEY, OLD_KEY, browser, session_service
from tests.accounts.conftest import PASSWORD, Member

KEYS = parse_signing_keys(f"{NEW_KEY},{OLD_KEY}")
CLAIMS = AccessClaims(uuid.uuid4(), "ann@example.com", uuid.uuid4(), uuid.uuid4(), "member")
SESSION = "/api/v1/auth/session"


def _production(**overrides: Any) -> Settings:
    fields: dict[str, Any] = {
        "environment": "production",
        "database_url": "postgresql://app_runtime:x@db.internal/acme",
        "database_owner_url": "postgresql://app_owner:x@db.internal/acme",
        "redis_url": "redis://cache.internal:6379/0",
        "secret_key": secrets.token_urlsafe(32),
        "support_url": "https://help.acme.test/",
        "clamd_address": "tcp://127.0.0.1:3310",
        "session_signing_keys": f"k1:{secrets.token_urlsafe(32)}",
        **overrides,
    }
    return Settings(**fields)


def _refused(**overrides: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        _production(**overrides)
    return problems_from(caught.value)


def test_production_accepts_generated_keys() -> None:
    assert _production().signing_keys.signing_kid == "k1"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (DEV_SESSION_SIGNING_KEYS, "development key"),
        (f"k1:{'ab' * 24}", "does not look random"),
        ("k1:tooshort", "at least 32 characters"),
        ("no-colon-here", "KID:SECRET"),
        (f"k1:{OLD_KEY.partition(':')[2]},k1:{NEW_KEY.partition(':')[2]}", "twice"),
        ("", "at least one"),
    ],
    ids=["development", "not-random", "short", "malformed", "repeated-kid", "empty"],
)
def test_production_refuses_missing_development_and_weak_keys_by_name(value: str, why: str) -> None:
    problems = _refused(session_signing_keys=value, secret_key="short")
    assert set(problems) == {"SESSION_SIGNING_KEYS", "SECRET_KEY"}  # every bad variable at once
    assert why in problems["SESSION_SIGNING_KEYS"]
    secret = value.partition(":")[2]
    if len(secret) > 8:
        assert secret not in json.dumps(problems)


def test_tokens_verify_by_kid_until_the_key_is_retired() -> None:
    signed_by_old = issue_access_token(parse_signing_keys(OLD_KEY), CLAIMS, timedelta(minutes=5))
    assert verify_access_token(KEYS, signed_by_old) == CLAIMS  # old key still configured
    retired = parse_signing_keys(NEW_KEY)
    assert verify_access_token(retired, signed_by_old) is None


def _forged(header: dict[str, Any], secret: str, algorithm: str = "HS256", **claims: Any) -> str:
    now = datetime.now(UTC)
    payload: dict[str, Any] = {
        "iss": "app",
        "aud": "app-session",
        "sub": str(CLAIMS.user_id),
        "email": CLAIMS.email,
        "tid": str(CLAIMS.tenant_id),
        "sid": str(CLAIMS.family_id),
        "role": "owner",
        "jti": "x",
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        **claims,
    }
    return jwt.encode(payload, secret, algorithm=algorithm, headers=header)


def _hs512(secret: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)  # a forger does not care
        return _forged({"kid": "k-new"}, secret, algorithm="HS512")


def test_forged_unknown_expired_and_incomplete_tokens_are_refused() -> None:
    new_secret = NEW_KEY.partition(":")[2]
    assert verify_access_token(KEYS, _forged({"kid": "k-new"}, new_secret)) is not None
    refused = [
        _forged({"kid": "k-unknown"}, new_secret),  # right secret, kid not configured
        _forged({}, new_secret),  # no kid
        _forged({"kid": "k-new"}, "another secret of at least thirty-two bytes"),
        _hs512(new_secret),  # the right key, another algorithm: pinned to HS256
        _forged({"kid": "k-new"}, new_secret, exp=datetime.now(UTC) - timedelta(seconds=1)),
        _forged({"kid": "k-new"}, new_secret, aud="someone-else"),
        _forged({"kid": "k-new"}, new_secret, sid=None),
        jwt.encode({"sub": "x"}, key="", algorithm="none", headers={"kid": "k-new"}),
        "not.a.jwt",
    ]
    assert [verify_access_token(KEYS, token) for token in refused] == [None] * len(refused)


def _cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, keys: str, *args: str
) -> tuple[int, dict[str, str] | None, str]:
    monkeypatch.setenv("SESSION_SIGNING_KEYS", keys)
    capsys.readouterr()
    status = main(["auth", *args])
    out, err = capsys.readouterr()
    return status, json.loads(out) if out.strip() else None, err


def test_rotate_keys_puts_a_new_key_first_and_retire_key_removes_the_old(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, printed, _ = _cli(capsys, monkeypatch, OLD_KEY, "rotate-keys")
    assert status == 0
    assert printed is not None
    rotated = parse_signing_keys(printed["SESSION_SIGNING_KEYS"])
    assert rotated.signing_kid == printed["kid"] != "k-old"
    assert list(rotated.secrets_by_kid) == [printed["kid"], "k-old"]
    status, retired, _ = _cli(
        capsys, monkeypatch, printed["SESSION_SIGNING_KEYS"], "retire-key", "k-old"
    )
    assert status == 0
    assert retired is not None
    assert retired["SESSION_SIGNING_KEYS"] == printed["entry"]
    # The signing key cannot be retired, nor a key that is not there.
    rotated_value = printed["SESSION_SIGNING_KEYS"]
    assert _cli(capsys, monkeypatch, rotated_value, "retire-key", printed["kid"])[0] == 2
    assert _cli(capsys, monkeypatch, OLD_KEY, "retire-key", "k-gone")[0] == 2


def test_the_development_key_is_dropped_by_a_rotation(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, printed, _ = _cli(capsys, monkeypatch, DEV_SESSION_SIGNING_KEYS, "rotate-keys")
    assert status == 0
    assert printed is not None
    assert printed["SESSION_SIGNING_KEYS"] == printed["entry"]


def test_a_key_rotation_over_real_http(
    service_urls: ServiceUrls,
    new_tenant: Callable[[], NewTenant],
    add_member: Callable[..., Member],
) -> None:
    """Old kid verifies after the rotation, until it is retired; an unknown kid is 401."""
    member = add_member(new_tenant().tenant_id)
    with session_service(service_urls, keys=OLD_KEY) as before, browser(before.base_url) as tab:
        assert tab.login(member.email, PASSWORD).status_code == 200
        old_token = str(tab.cookie("__Host-access"))
        claims = jwt.decode(old_token, options={"verify_signature": False})
        unknown = jwt.encode(claims, OLD_KEY.partition(":")[2], headers={"kid": "k-unknown"})
        assert tab.get(SESSION, headers={"Cookie": f"__Host-access={unknown}"}).status_code == 401
    both = f"{NEW_KEY},{OLD_KEY}"
    with session_service(service_urls, keys=both) as during, browser(during.base_url) as tab:
        sent = {"Cookie": f"__Host-access={old_token}"}
        assert tab.get(SESSION, headers=sent).status_code == 200
        assert tab.login(member.email, PASSWORD).status_code == 200
        new_token = str(tab.cookie("__Host-access"))
        assert jwt.get_unverified_header(new_token)["kid"] == "k-new"
    with session_service(service_urls, keys=NEW_KEY) as after, browser(after.base_url) as tab:
        assert tab.get(SESSION, headers={"Cookie": f"__Host-access={old_token}"}).status_code == 401
        assert tab.get(SESSION, headers={"Cookie": f"__Host-access={new_token}"}).status_code == 200
