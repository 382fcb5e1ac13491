"""Key-change notices: the console script announces a revoked or rotated API key on Redis pub/sub,
and every API process evicts that key from its cache as the notice lands.

A notice only makes a change faster; it is not what makes it true. The database refuses the key
from the commit on, and every process asks the database again within `KEY_CACHE_SECONDS`, so a
lost notice (Redis down, a listener reconnecting) costs at most that long. Pub/sub keeps nothing
for an absent subscriber, so a listener that resubscribes after a loss empties the cache; before
the first subscription, the TTL alone bounds what a missed notice costs. The listener runs
beside the requests on its own connection: no request waits for Redis because of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.auth.principal import ApiKeyCache
from app.observability.logging import get_logger

log = get_logger("app.auth.key_changes")
# How long one wait for a message lasts; between waits the client may PING (its health check)
# and a stop request is noticed.
_POLL_S = 1.0
_RETRY_S = 1.0


def key_change_channel(prefix: str) -> str:
    """The pub/sub channel of this service's key changes (its Redis key prefix first)."""
    return f"{prefix}api-key-changes"


def announce_key_change(redis_url: str, prefix: str, key_id: uuid.UUID) -> bool:
    """Tell every API process to forget `key_id`; False when Redis did not take the notice."""
    client = SyncRedis.from_url(redis_url, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        client.publish(key_change_channel(prefix), key_id.hex)
    except (RedisError, OSError):
        return False
    finally:
        client.close()
    return True


class KeyChangeListener:
    """Subscribes to the key-change channel and evicts each announced key from `cache`.

    `stop` sets a flag the loops check between waits, as well as cancelling: redis-py can
    swallow a cancellation that lands while it connects or subscribes, so a wait is short
    (`_POLL_S`) and the flag ends the loop within one wait whatever happened to the cancel.
    """

    def __init__(self, redis: Redis, prefix: str, cache: ApiKeyCache) -> None:
        self._redis = redis
        self._channel = key_change_channel(prefix)
        self._cache = cache
        # Read from other threads (tests, diagnostics): a threading.Event, not an asyncio one.
        self.subscribed = threading.Event()
        self._lost = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="key-change-listener")

    async def stop(self) -> None:
        """End the listener and wait (boundedly) for it to let go of its connection."""
        self._stopping.set()
        if self._task is None:
            return
        self._task.cancel()
        await asyncio.wait({self._task}, timeout=_POLL_S + 1.0)

    async def _run(self) -> None:
        """Listen until stopped, resubscribing after any Redis failure."""
        while not self._stopping.is_set():
            try:
                await self._listen()
            except (RedisError, OSError) as error:
                if self.subscribed.is_set():
                    log.warning("key_change_listener_lost", error=type(error).__name__)
                self.subscribed.clear()
                self._lost = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), _RETRY_S)

    async def _listen(self) -> None:
        async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self._channel)
            if self._lost:
                self._cache.clear()  # notices sent while nobody listened are gone
            self.subscribed.set()
            while not self._stopping.is_set():
                message = await pubsub.get_message(timeout=_POLL_S)
                if message is not None:
                    self._evict(message["data"])

    def _evict(self, data: object) -> None:
        try:
            key_id = uuid.UUID(hex=data.decode() if isinstance(data, bytes) else str(data))
        except ValueError:
            log.warning("key_change_notice_malformed")
            return
        self._cache.evict(key_id)
        log.info("api_key_evicted", key_id=str(key_id))


def start_key_change_listener(
    redis: Redis | None, prefix: str, cache: ApiKeyCache
) -> KeyChangeListener | None:
    """Start listening (the lifespan calls this); nothing without Redis."""
    if redis is None:
        return None
    listener = KeyChangeListener(redis, prefix, cache)
    listener.start()
    return listener


async def stop_key_change_listener(listener: KeyChangeListener | None) -> None:
    if listener is not None:
        await listener.stop()
