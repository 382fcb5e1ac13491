"""A warning repeated on every request is logged once per interval, with what it left out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.observability.logging import configure_logging, get_logger
from app.observability.throttled_warning import ThrottledWarning

LogLines = Callable[[], list[dict[str, Any]]]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_interval_carrying_the_suppressed_count(log_lines: LogLines) -> None:
    """100 events in one interval log one line; the next interval's line counts the other 99."""
    configure_logging("INFO", "json")
    clock = Clock()
    warn = ThrottledWarning(get_logger("test"), "dependency_flapping", interval=10.0, clock=clock)
    log_lines()
    for _ in range(100):
        warn(error="ConnectionError")
        clock.now += 0.05  # 100 events over 5 s: all inside the first interval
    clock.now += 6.0  # past the interval
    warn(error="TimeoutError")
    lines = [line for line in log_lines() if line["event"] == "dependency_flapping"]
    assert [(line["suppressed"], line["error"], line["level"]) for line in lines] == [
        (0, "ConnectionError", "warning"),
        (99, "TimeoutError", "warning"),
    ]


def test_each_instance_throttles_only_its_own_event(log_lines: LogLines) -> None:
    """Two kinds of warning do not silence each other."""
    configure_logging("INFO", "json")
    clock = Clock()
    first = ThrottledWarning(get_logger("test"), "first_kind", interval=10.0, clock=clock)
    second = ThrottledWarning(get_logger("test"), "second_kind", interval=10.0, clock=clock)
    log_lines()
    for _ in range(3):
        first()
        second()
    assert [line["event"] for line in log_lines()] == ["first_kind", "second_kind"]
