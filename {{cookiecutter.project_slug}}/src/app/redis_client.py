"""The shared async Redis client. Redis is optional: callers must survive it being down."""

from __future__ import annotations

from redis.asyncio import Redis


def create_redis(url: str) -> Redis:
    """A client with short timeouts, so a dead Redis costs a request milliseconds, not seconds."""
    client: Redis = Redis.from_url(
        url,
        socket_connect_timeout=0.5,
        socket_timeout=0.5,
        health_check_interval=30,
    )
    return client


async def ping_redis(client: Redis) -> None:
    """Raise when Redis does not answer PING."""
    await client.ping()
