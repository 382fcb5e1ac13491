"""Read a worker process's stdout and stderr while it runs, as an operator's log shipper does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from subprocess import Popen
from typing import IO, Any


class ProcessOutput:
    """Collects every line the process writes, on both streams, from background threads."""

    def __init__(self, process: Popen[str]) -> None:
        self.process = process
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, lines), daemon=True)
            for stream, lines in ((process.stdout, self.stdout), (process.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str] | None, lines: list[str]) -> None:
        if stream is not None:
            for line in stream:
                lines.append(line.rstrip("\n"))

    def records(self) -> list[dict[str, Any]]:
        """The stdout lines parsed so far that are JSON objects (log records)."""
        parsed = []
        for line in list(self.stdout):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                parsed.append(record)
        return parsed

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], seconds: float = 60) -> None:
        """Wait until a log record matches `predicate`; fail with the output if none does."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(predicate(record) for record in self.records()):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no matching log line; output:\n{self.tail()}")

    def stop(self, seconds: float = 30) -> int:
        """SIGTERM, wait for the exit and for both streams to be read to the end."""
        self.process.terminate()
        code = self.process.wait(timeout=seconds)
        for reader in self._readers:
            reader.join(timeout=seconds)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code

    def tail(self, lines: int = 40) -> str:
        return "\n".join([*self.stdout[-lines:], "--- stderr ---", *self.stderr[-lines:]])


def not_json_lines(lines: list[str]) -> list[str]:
    """Lines that are not one JSON object with `event` and `level` (blank lines included)."""
    bad = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if not isinstance(record, dict) or not {"event", "level"} <= record.keys():
            bad.append(line)
    return bad


def metric_value(text: str, name: str, labels: str) -> float:
    """The sample of `name` whose labels include each of `labels` (comma-separated) in a scrape."""
    wanted = labels.split(",")
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(label in line for label in wanted):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{labels}}} not exported:\n{text[-1500:]}")
