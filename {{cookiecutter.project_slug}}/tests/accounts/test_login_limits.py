"""Login rate limits per account and per IP: 429 with Retry-After, in Redis or, when Redis is
down, in the process's own memory (the limit never vanishes)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from app.auth.login_limits import LocalWindows, LoginLimiter, TooManyLoginAttemptsError
from app.cache.connections import create_redis
from app.dev.services import ServiceUrls
from app.http.errors import domain_problem
from app.settings import Settings

# Nothing listens on port 1: every command fails at once with a connection error.
DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture
async def redis(service_urls: ServiceUrls) -> AsyncIterator[Redis]:
    client = create_redis(service_urls.redis_url)
    yield client
    await client.aclose()


def _limiter(
    redis: Redis | None, per_account: str = "3/minute", per_ip: str = "5/minute"
) -> LoginLimiter:
    return LoginLimiter(redis, per_account, per_ip, key_prefix=f"test-{uuid.uuid4().hex[:12]}:")


async def _allowed(limiter: LoginLimiter, email: str, ip: str) -> bool:
    try:
        await limiter.check(email, ip)
    except TooManyLoginAttemptsError:
        return False
    return True


async def test_an_account_is_limited_whatever_the_spelling_of_its_email(redis: Redis) -> None:
    """The 4th attempt on one account in a minute is refused, from any IP, in any case."""
    limiter = _limiter(redis)
    spellings = ["ann@example.com", " ANN@example.com", "Ann@Example.COM "]
    for number, email in enumerate(spellings):
        assert await _allowed(limiter, email, f"192.0.2.{number}")
    with pytest.raises(TooManyLoginAttemptsError) as raised:
        await limiter.check("ann@example.com", "192.0.2.9")
    assert raised.value.status == 429
    assert 1 <= raised.value.retry_after <= 60
    assert await _allowed(limiter, "bob@example.com", "192.0.2.9")


async def test_an_ip_is_limited_across_accounts(redis: Redis) -> None:
    """Six different emails from one IP: the 6th is refused; another IP is not."""
    limiter = _limiter(redis)
    results = [await _allowed(limiter, f"u{n}@example.com", "198.51.100.7") for n in range(6)]
    assert results == [True] * 5 + [False]
    assert await _allowed(limiter, "u9@example.com", "198.51.100.8")


async def test_an_ipv6_network_shares_one_bucket(redis: Redis) -> None:
    """Addresses of one /64 count together, as in the general rate limiter."""
    limiter = _limiter(redis)
    for host in range(5):
        assert await _allowed(limiter, f"v{host}@example.com", f"2001:db8:1:2::{host + 1}")
    assert not await _allowed(limiter, "v9@example.com", "2001:db8:1:2::ff")


async def test_a_successful_login_clears_the_account_not_the_ip(redis: Redis) -> None:
    """After `reset`, the account has its quota again; the IP's count stays."""
    limiter = _limiter(redis, per_account="2/minute", per_ip="3/minute")
    assert await _allowed(limiter, "cy@example.com", "203.0.113.1")
    assert await _allowed(limiter, "cy@example.com", "203.0.113.1")
    await limiter.reset("CY@example.com")
    assert await _allowed(limiter, "cy@example.com", "203.0.113.1")
    assert not await _allowed(limiter, "cy@example.com", "203.0.113.1")


async def test_with_redis_down_the_limit_holds_in_process_memory() -> None:
    """A Redis that refuses connections: the same quotas, counted locally, still answer 429."""
    dead = create_redis(DEAD_REDIS)
    try:
        limiter = _limiter(dead)
        results = [await _allowed(limiter, "dee@example.com", "192.0.2.50") for _ in range(4)]
        assert results == [True, True, True, False]
        await limiter.reset("dee@example.com")
        assert await _allowed(limiter, "dee@example.com", "192.0.2.50")
        # The IP's 6th attempt (per_ip is 5/minute), whatever the account.
        assert not await _allowed(limiter, "fay@example.com", "192.0.2.50")
    finally:
        await dead.aclose()


def test_local_windows_start_again_after_their_window() -> None:
    """A local count lasts its window, then starts from one; the reset time counts down."""
    now = [100.0]
    windows = LocalWindows(maxsize=10, clock=lambda: now[0])
    assert windows.hit("k", 60) == (1, 60_000)
    now[0] += 59
    assert windows.hit("k", 60) == (2, 1_000)
    now[0] += 1
    assert windows.hit("k", 60) == (1, 60_000)


def test_the_refusal_is_a_429_problem_with_retry_after() -> None:
    """Rendered like every domain error: problem+json, status 429, Retry-After in seconds."""
    scope = {"type": "http", "headers": [(b"accept", b"application/json")], "path": "/x"}
    response = domain_problem(scope, TooManyLoginAttemptsError(42), "https://support.example/")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "42"
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_malformed_login_rate_is_refused_naming_the_variable(
    make_settings: Callable[..., Settings],
) -> None:
    """`LOGIN_RATE_LIMIT_PER_*` must read N/second|minute|hour, like the other rates."""
    with pytest.raises(ValidationError) as raised:
        make_settings(login_rate_limit_per_account="ten a minute", login_rate_limit_per_ip="5/day")
    assert {error["loc"][0] for error in raised.value.errors()} == {
        "login_rate_limit_per_account",
        "login_rate_limit_per_ip",
    }
    assert make_settings(login_rate_limit_per_ip="20 / hour").login_rate_limit_per_ip == "20/hour"
