"""The rate limiter's lean Redis connection (app.cache.connections) under a real Redis's faults.

One socket carries every caller's commands and replies are matched in order, so the danger is a
reply delivered to the wrong caller after a fault. These tests freeze, kill and restart a private
Redis with commands in flight and check that every caller gets its own reply or a `RedisError`,
never another's, and never waits past its timeout.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.cache.connections import LeanRedis
from tests.faults.servers import PrivateRedis

pytestmark = pytest.mark.faults
CALLERS = 50


async def _echo_each(client: LeanRedis, label: str) -> list[object]:
    """`CALLERS` concurrent ECHOs, each of its own text: their replies or errors, in order."""
    commands = (client.execute("ECHO", f"{label}-{i}") for i in range(CALLERS))
    return list(await asyncio.gather(*commands, return_exceptions=True))


def _own_replies(label: str) -> list[object]:
    return [f"{label}-{i}".encode() for i in range(CALLERS)]


async def test_a_frozen_redis_times_out_every_caller_and_no_late_reply_goes_astray(
    fault_redis: PrivateRedis,
) -> None:
    """Timeout mid-pipeline: the thawed server answers the stalled commands late, on the socket
    the timeout closed; the next callers, on a new socket, each get their own reply."""
    client = LeanRedis(fault_redis.url, timeout=0.3)
    try:
        assert await client.execute("PING") == b"PONG"
        fault_redis.freeze()
        try:
            stalled = await _echo_each(client, "stalled")
        finally:
            fault_redis.thaw()
        assert all(isinstance(result, RedisTimeoutError) for result in stalled), stalled
        assert await _echo_each(client, "fresh") == _own_replies("fresh")
    finally:
        await client.aclose()


async def test_a_crash_with_commands_in_flight_fails_them_and_the_client_reconnects(
    fault_redis: PrivateRedis,
) -> None:
    """Connection reset with commands in flight (SIGKILL, as the OOM killer would): each caller
    learns at once, long before its 5 s timeout; with Redis down a command is refused, not held;
    once Redis is back, the same client serves every caller again."""
    client = LeanRedis(fault_redis.url, timeout=5.0)
    loop = asyncio.get_running_loop()
    try:
        assert await client.execute("PING") == b"PONG"
        fault_redis.freeze()  # the commands below are written and stay unanswered
        in_flight = asyncio.ensure_future(_echo_each(client, "lost"))
        await asyncio.sleep(0.2)
        killed_at = loop.time()
        fault_redis.kill()
        lost = await in_flight
        assert all(isinstance(result, RedisConnectionError) for result in lost), lost
        assert loop.time() - killed_at < 2.0
        with pytest.raises(RedisConnectionError):
            await client.execute("PING")
        fault_redis.start()
        assert await _echo_each(client, "back") == _own_replies("back")
    finally:
        await client.aclose()


async def test_after_a_restart_the_stale_socket_fails_fast_and_then_every_caller_is_served(
    fault_redis: PrivateRedis,
) -> None:
    """A clean restart closes the idle socket. Commands written before the client has read that
    close fail at once with a `RedisError` (the limiter lets those requests through, counted);
    they are not retried, since a command Redis may have run must not run twice. Every command
    after them is served on a new socket with its own reply."""
    client = LeanRedis(fault_redis.url, timeout=1.0)
    loop = asyncio.get_running_loop()
    try:
        assert await client.execute("PING") == b"PONG"
        fault_redis.restart()
        sent_at = loop.time()
        first = await _echo_each(client, "first")
        assert loop.time() - sent_at < 0.5  # failed or served, not held to the timeout
        failed = [result for result in first if not isinstance(result, bytes)]
        assert all(isinstance(result, RedisConnectionError) for result in failed), failed
        if not failed:
            assert first == _own_replies("first")
        assert await _echo_each(client, "then") == _own_replies("then")
    finally:
        await client.aclose()
