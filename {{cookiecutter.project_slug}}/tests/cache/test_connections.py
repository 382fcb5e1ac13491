"""The rate limiter's lean Redis connection: shared by concurrent tasks, fails as RedisError."""

from __future__ import annotations

import asyncio
import socket
import uuid

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.cache.connections import LeanRedis
from app.dev.services import ServiceUrls
from app.middleware.rate_limits import RateCounter, parse_rate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_concurrent_commands_each_get_their_own_reply(service_urls: ServiceUrls) -> None:
    client = LeanRedis(service_urls.redis_url)
    key = f"test-lean-{uuid.uuid4().hex}"
    try:
        replies = await asyncio.gather(*(client.execute("ECHO", f"{key}-{i}") for i in range(200)))
        assert replies == [f"{key}-{i}".encode() for i in range(200)]
        await client.execute("SET", key, "x" * 100_000)  # a reply split over several reads
        assert await client.execute("GET", key) == b"x" * 100_000
        with pytest.raises(ResponseError):
            await client.execute("INCR", key)
        assert await client.execute("DEL", key) == 1
    finally:
        await client.aclose()


async def test_an_error_reply_fails_only_its_own_command(service_urls: ServiceUrls) -> None:
    """Commands sent in one write: the one Redis refuses raises, the others get their replies."""
    client = LeanRedis(service_urls.redis_url)
    key = f"test-lean-{uuid.uuid4().hex}"
    try:
        await client.execute("SET", key, "not a number")
        before = asyncio.ensure_future(client.execute("ECHO", "before"))
        refused = asyncio.ensure_future(client.execute("INCR", key))
        after = asyncio.ensure_future(client.execute("ECHO", "after"))
        with pytest.raises(ResponseError, match="not an integer"):
            await refused
        assert (await before, await after) == (b"before", b"after")
        assert await client.execute("DEL", key) == 1  # the connection is still in step
    finally:
        await client.aclose()


async def test_the_counter_survives_a_script_flush(service_urls: ServiceUrls) -> None:
    """EVALSHA of a script Redis forgot (restart, SCRIPT FLUSH) falls back to EVAL."""
    client = LeanRedis(service_urls.redis_url)
    counter = RateCounter(client, f"test-lean-{uuid.uuid4().hex}:")
    policy = parse_rate("ip", "5/minute")
    try:
        first = await counter.hit([(policy, "192.0.2.1")])
        await client.execute("SCRIPT", "FLUSH")
        second = await counter.hit([(policy, "192.0.2.1")])
        assert (first[0].count, second[0].count) == (1, 2)
        assert 0 < second[0].reset_ms <= 60_000
    finally:
        await client.aclose()


async def test_a_dead_or_silent_redis_is_a_redis_error() -> None:
    with pytest.raises(RedisConnectionError):
        await LeanRedis(f"redis://127.0.0.1:{free_port()}/0").execute("PING")
    # A server that accepts and never answers: the command times out instead of hanging.
    accepted: list[asyncio.StreamWriter] = []

    async def accept(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    silent = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    client = LeanRedis(f"redis://127.0.0.1:{port}/0", timeout=0.1)
    try:
        results = await asyncio.gather(
            client.execute("PING"), client.execute("PING"), return_exceptions=True
        )
        assert all(isinstance(result, RedisError) for result in results), results
    finally:
        await client.aclose()
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_each_command_gets_its_full_timeout_from_its_own_send() -> None:
    """One watchdog serves every pending command: it waits for the oldest, never fails early."""
    connections: list[asyncio.StreamWriter] = []

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        await reader.readuntil(b"PING\r\n")
        writer.write(b"+PONG\r\n")  # then silence

    server = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = LeanRedis(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    loop = asyncio.get_running_loop()
    try:
        assert await client.execute("PING") == b"PONG"  # arms the watchdog for t + 0.3
        await asyncio.sleep(0.2)
        sent = loop.time()
        with pytest.raises(RedisTimeoutError):
            await client.execute("PING")  # due at t + 0.5, not when the first watchdog fires
        assert loop.time() - sent >= 0.29
    finally:
        await client.aclose()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()
