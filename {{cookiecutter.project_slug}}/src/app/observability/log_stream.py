"""Where log lines go: the process's stdout, one write per event-loop turn.

A module of its own because every log line passes through it, from structlog and from the
standard library's loggers alike (`app.observability.logging` routes both here).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import sys
import threading


class LogStream:
    """Writes to whatever `sys.stdout` is at the time of the write, and batches its writes.

    structlog binds a logger's output file when the logger is first used; resolving stdout per
    write keeps cached loggers pointed at the live stream (pytest swaps it per test).

    Every log line asks for a flush. On an event loop's thread the flush waits for the loop's next
    turn, so the lines of all the requests that finished in one turn leave in one system call
    instead of one each (a write costs as much as the rest of the access log; performance.md).
    Lines for the process's own stdout are held here until then, not in the stream's buffer:
    containers run Python with PYTHONUNBUFFERED=1, where every `sys.stdout.write` is a system
    call. A redirected stdout (a test's capture, `contextlib.redirect_stdout`) gets each line at
    once and only its flush is deferred. Anywhere else (worker threads, the CLI, interpreter exit)
    everything is written and flushed at once. A line is at most one loop turn late, and only a
    process killed in that turn could lose it.
    """

    def __init__(self) -> None:
        self._flush_scheduled_on: asyncio.AbstractEventLoop | None = None
        self._held: list[str] = []
        self._lock = threading.Lock()  # lines come from worker threads too
        atexit.register(self._flush_now)
        # A forked child (Celery's pool) would write its parent's held lines a second time.
        os.register_at_fork(after_in_child=self._held.clear)

    def write(self, text: str) -> int:
        if sys.stdout is not sys.__stdout__:
            return sys.stdout.write(text)
        with self._lock:
            self._held.append(text)
        return len(text)

    def flush(self) -> None:
        scheduled = self._flush_scheduled_on
        if scheduled is not None and scheduled.is_running():
            # Its next turn writes every held line, whichever thread held it. Checked before
            # `get_running_loop`, which costs a getpid system call per line on Python 3.11.
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush_now()
            return
        self._flush_scheduled_on = loop
        loop.call_soon(self._flush_now)

    def _flush_now(self) -> None:
        self._flush_scheduled_on = None
        with self._lock:
            held = "".join(self._held)
            self._held.clear()
        stdout = sys.__stdout__
        if held and stdout is not None:
            stdout.write(held)
            stdout.flush()
        if sys.stdout is not stdout:
            sys.stdout.flush()


STDOUT = LogStream()
