"""The process's Redis connections: the shared redis-py client and a lean one for the hot path.

`create_redis` builds the shared async client with short timeouts; Redis is optional, so every
caller must survive it being down.

`LeanRedis` is one pipelined socket whose replies are matched in order.

The rate limiter sends one `EVALSHA` per request. Through redis-py's asyncio pool that costs
75-130 µs of CPU (pool checkout, a `can_read_destructive` probe, an asyncio timeout per read),
more than the whole middleware budget of a trivial route; this connection costs about a third of
that (docs/performance.md). Concurrent requests share it safely: each command is written whole in
one `transport.write`, its reply future is queued in the same step, and Redis answers in order.

It keeps the guarantees of the shared client: short connect and command timeouts (a timeout
closes the connection, failing every pending command, so no reply is ever matched to the wrong
caller), and every failure is a `redis.exceptions.RedisError`, which callers treat as "Redis is
down". `rediss://` gets TLS; the URL's username, password and database are honoured.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import threading
from collections import deque
from collections.abc import Awaitable
from typing import Any, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Reply = Any


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


def _encode(*parts: bytes | str | int) -> bytes:
    """A command in RESP form, encoded by hiredis (a third of the cost of doing it in Python)."""
    # The stub declares a one-element tuple; the function takes any number of parts.
    encoded: bytes = hiredis.pack_command(parts)  # type: ignore[arg-type]
    return encoded


def _error_reply(message: str) -> RedisError:
    return NoScriptError(message) if message.startswith("NOSCRIPT") else ResponseError(message)


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self.transport: asyncio.Transport | None = None
        self.timeout = timeout
        # Each pending command's reply future and the loop time by which its reply is due.
        self.waiters: deque[tuple[asyncio.Future[Reply], float]] = deque()
        # One timer for the oldest pending command, not one per command: a timer per command
        # cost more than the rest of `execute`.
        self.watchdog: asyncio.TimerHandle | None = None
        # hiredis, redis-py's own C parser: a fifth of the cost of parsing RESP in Python.
        self.replies = hiredis.Reader(replyError=_error_reply)
        # Commands written in one event-loop turn leave in one `write`: one system call for all
        # the requests that reached the limiter together, not one each.
        self.outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is not an asyncio.Transport subclass, so no isinstance).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.replies.feed(data)
        try:
            while self.waiters:
                reply = self.replies.gets()
                if reply is False:
                    return  # the next reply is still arriving: hiredis keeps what came of it
                waiter, _ = self.waiters.popleft()
                if waiter.done():  # it timed out, and its reply is skipped
                    continue
                if isinstance(reply, RedisError):  # an error reply is raised to its caller
                    waiter.set_exception(reply)
                else:
                    waiter.set_result(reply)
        except hiredis.ProtocolError as error:
            self.fail(RedisConnectionError(f"Unreadable reply from Redis: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisConnectionError("Redis closed the connection."))

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def flush(self) -> None:
        outgoing, self.outgoing = self.outgoing, []
        if self.transport is not None and outgoing:
            self.transport.write(b"".join(outgoing))

    def expect_reply(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Reply]:
        waiter: asyncio.Future[Reply] = loop.create_future()
        self.waiters.append((waiter, loop.time() + self.timeout))
        if self.watchdog is None:
            self.watchdog = loop.call_later(self.timeout, self._check_oldest, loop)
        return waiter

    def _check_oldest(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fail everything when the oldest pending reply is overdue; else wait for it."""
        self.watchdog = None
        if not self.waiters:
            return
        due = self.waiters[0][1]
        if due <= loop.time():
            self.fail(RedisTimeoutError("Timeout reading from Redis."))
        else:
            self.watchdog = loop.call_at(due, self._check_oldest, loop)

    def fail(self, error: RedisError) -> None:
        """Close the connection and fail every pending command with `error`."""
        if self.transport is not None:
            self.transport.close()
        self.transport = None
        self.outgoing.clear()
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.waiters:
            waiter, _ = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


class LeanRedis:
    """One lazily opened, pipelined connection to `url`; safe to share between tasks."""

    def __init__(self, url: str, *, connect_timeout: float = 0.5, timeout: float = 0.5) -> None:
        options = parse_url(url)
        self.host = str(options.get("host", "localhost"))
        self.port = int(options.get("port", 6379))
        self._path = options.get("path")
        self._tls = options.get("connection_class") is SSLConnection
        self._username = options.get("username")
        self._password = options.get("password")
        self._db = int(options.get("db", 0) or 0)
        self._connect_timeout = connect_timeout
        self._timeout = timeout
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._lock: asyncio.Lock | None = None

    async def _connection(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        """The usable connection on `loop`, opened if need be (once, however many ask at once)."""
        if self._loop is not loop:  # a new event loop (tests): the old socket belongs to the old
            self._loop, self._lock, self._protocol = loop, asyncio.Lock(), None
            self._loop_thread = threading.get_ident()
        assert self._lock is not None  # noqa: S101 - set with the loop
        async with self._lock:
            if self._protocol is None or not self._protocol.usable:
                self._protocol = await self._connect(loop)
            return self._protocol

    async def _connect(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        try:
            async with asyncio.timeout(self._connect_timeout):
                if self._path:
                    _, protocol = await loop.create_unix_connection(
                        self._new_protocol, str(self._path)
                    )
                else:
                    context = ssl.create_default_context() if self._tls else None
                    _, protocol = await loop.create_connection(
                        self._new_protocol, self.host, self.port, ssl=context
                    )
                setup: list[tuple[bytes | str | int, ...]] = []
                if self._password is not None:
                    credentials = (self._username, self._password) if self._username else ()
                    setup.append(("AUTH", *(credentials or (self._password,))))
                if self._db:
                    setup.append(("SELECT", self._db))
                for command in setup:
                    try:
                        await self._send(protocol, _encode(*command), loop)
                    except ResponseError:
                        protocol.fail(RedisConnectionError("Redis refused the connection setup."))
                        raise
        except TimeoutError as error:
            raise RedisTimeoutError("Timeout connecting to Redis.") from error
        except OSError as error:
            raise RedisConnectionError(f"Error connecting to Redis: {error}") from error
        return protocol

    def _new_protocol(self) -> _Protocol:
        return _Protocol(self._timeout)

    def _send(
        self, protocol: _Protocol, encoded: bytes, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[Reply]:
        """Queue a command for this loop turn's write; its reply (an error reply as the future's
        exception), or the timeout, settles it."""
        assert protocol.transport is not None  # noqa: S101 - callers checked `usable`
        if not protocol.outgoing:
            loop.call_soon(protocol.flush)
        protocol.outgoing.append(encoded)
        return protocol.expect_reply(loop)

    async def execute(self, *command: bytes | str | int) -> Reply:
        """Send one command and return its reply; an error reply is raised."""
        return await self.execute_encoded(_encode(*command))

    def execute_encoded(self, encoded: bytes) -> Awaitable[Reply]:
        """`execute` for a command already in RESP form (`_encode`).

        This runs on every request. While the connection's loop runs on this thread it returns
        the reply's future itself: no coroutine, and no `get_running_loop` (a getpid system call
        on Python 3.11). Otherwise a coroutine that opens the connection first.
        """
        loop, protocol = self._loop, self._protocol
        if (
            loop is None
            or protocol is None
            or not protocol.usable
            or self._loop_thread != threading.get_ident()
            or not loop.is_running()
        ):
            return self._connect_and_send(encoded)
        return self._send(protocol, encoded, loop)

    async def _connect_and_send(self, encoded: bytes) -> Reply:
        loop = asyncio.get_running_loop()
        protocol = await self._connection(loop)
        return await self._send(protocol, encoded, loop)

    async def aclose(self) -> None:
        if self._protocol is not None and self._loop is asyncio.get_running_loop():
            self._protocol.fail(RedisConnectionError("Connection closed."))
        self._protocol = None


class LeanScript:
    """A Lua script run by `EVALSHA`, loaded with `EVAL` when Redis does not know it yet."""

    def __init__(self, client: LeanRedis, script: str) -> None:
        self.client = client
        self.script = script
        self.sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: list[str], args: list[int]) -> Reply:
        try:
            command = _encode("EVALSHA", self.sha, len(keys), *keys, *args)
            return await self.client.execute_encoded(command)
        except NoScriptError:
            return await self.client.execute("EVAL", self.script, len(keys), *keys, *args)
