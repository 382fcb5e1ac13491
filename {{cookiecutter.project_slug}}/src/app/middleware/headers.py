"""Setting response headers on a raw ASGI `http.response.start` message.

Starlette's `MutableHeaders` rescans the whole header list for every header it sets; the stack
sets a handful per request, so this does it in one pass.

The stack's `send` wrappers are plain functions that return `send(message)` for the caller to
await, not coroutines that await it themselves: a coroutine per layer and message (two messages a
response, five layers) cost more than the work the wrappers do (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Message

RawHeader = tuple[bytes, bytes]


def set_headers(message: Message, pairs: Sequence[RawHeader], names: frozenset[bytes]) -> None:
    """Put `pairs` on the response, replacing any header of the same name a route set itself.

    `names` are the names of `pairs`, made once by the caller: this runs on every response.
    They are compared as they are: the ASGI spec has every response header name in lower case.
    """
    kept = [pair for pair in message.get("headers", ()) if pair[0] not in names]
    kept.extend(pairs)
    message["headers"] = kept
