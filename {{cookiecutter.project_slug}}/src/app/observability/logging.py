"""structlog configuration: one JSON object per line in production, redaction on by default.

The standard library's loggers (uvicorn, SQLAlchemy, Celery) are routed through the same processors,
so redaction (`app.observability.log_redaction`, re-exported here) covers third-party log lines
and exception text too.
"""

from __future__ import annotations

import json
import logging
import time
from contextvars import ContextVar
from typing import Any, Literal, TextIO, cast

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from app.observability.log_redaction import REDACTED as REDACTED
from app.observability.log_redaction import redact as redact
from app.observability.log_redaction import redact_sensitive as redact_sensitive
from app.observability.log_stream import STDOUT


def _name_our_loggers(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    if "logger_name" in event_dict:
        event_dict["logger"] = event_dict.pop("logger_name")
    return event_dict


def _drop_color_message(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """uvicorn adds an ANSI-coloured copy of its message for its own console formatter."""
    event_dict.pop("color_message", None)
    return event_dict


ACCESS_LOGGER = "app.access"
_access_logger: FilteringBoundLogger | None = None

# The correlation id of the request being served; set by `app.middleware.correlation`.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)


def add_request_and_trace_ids(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """`request_id` while a request is served (a bound one wins), and the active span's
    `trace_id` and `span_id`, so a line leads to its request and its trace."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        add_request_and_trace_ids,
        _name_our_loggers,
    ]


_second_stamped: tuple[int, str] = (0, "")
_LEVEL_OF_METHOD = {"warn": "warning", "exception": "error"}  # as structlog's add_log_level


def add_level_and_timestamp(
    _logger: WrappedLogger, method: str, event_dict: EventDict
) -> EventDict:
    """`level` and `timestamp`: UTC, ISO 8601 with microseconds (`2026-12-03T07:28:39.036519Z`).

    The timestamp structlog's `TimeStamper(fmt="iso", utc=True)` writes, at a fifth of its cost:
    the date and time of day are formatted once per second, not once per line.
    """
    global _second_stamped
    event_dict["level"] = _LEVEL_OF_METHOD.get(method, method)
    now = time.time()
    second = int(now)
    if _second_stamped[0] != second:
        _second_stamped = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    event_dict["timestamp"] = f"{_second_stamped[1]}.{int((now - second) * 1e6):06d}Z"
    return event_dict


def _json_fallback(value: Any) -> Any:
    """What structlog's JSONRenderer writes for a value JSON has no type for."""
    structlog_form = getattr(value, "__structlog__", None)
    return structlog_form() if structlog_form is not None else repr(value)


def render_json(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> str:
    """The line as JSON, by orjson: a tenth of the standard library's cost per access-log line.

    Our own processor rather than structlog's JSONRenderer around orjson, whose two layers of
    keyword arguments cost three times orjson itself. Keys that are not strings are written as
    strings rather than refused; what orjson still refuses (an integer beyond 64 bits, say) goes
    through the standard library: a log line is never lost to it.
    """
    try:
        data = orjson.dumps(event_dict, default=_json_fallback, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(event_dict, default=_json_fallback)
    return data.decode()


def _renderer(log_format: Literal["json", "console"]) -> Processor:
    if log_format == "json":
        return render_json
    return structlog.dev.ConsoleRenderer(colors=False)


def configure_logging(level: str, log_format: Literal["json", "console"]) -> None:
    """Configure structlog and route the standard library's logging through it."""
    stream = cast(TextIO, STDOUT)
    # Frame locals would put request bodies and credentials into the log: never render them.
    exception_formatter = (
        structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        if log_format == "json"
        else structlog.processors.format_exc_info
    )
    stack_info_renderer = structlog.processors.StackInfoRenderer()
    # Fields this module makes itself, which never hold a secret, come after redaction.
    tail: list[Processor] = [stack_info_renderer, exception_formatter, redact_sensitive]
    tail += [add_level_and_timestamp, _renderer(log_format)]
    chain = [*_shared_processors(), *tail]
    wrapper_class = structlog.make_filtering_bound_logger(logging.getLevelName(level))
    structlog.configure(
        processors=chain,
        wrapper_class=wrapper_class,
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    global _access_logger
    # The same chain, without the steps that cannot apply to the access line (it never carries
    # a traceback or a stack, and is bound with `logger` itself): it runs on every request.
    unused = (stack_info_renderer, exception_formatter, _name_our_loggers)
    lean_chain = [processor for processor in chain if processor not in unused]
    access = structlog.wrap_logger(
        structlog.WriteLogger(stream), processors=lean_chain, wrapper_class=wrapper_class
    )
    _access_logger = access.bind(logger=ACCESS_LOGGER)
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_shared_processors(),
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            _drop_color_message,  # after ExtraAdder, which copies uvicorn's extras back in
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # uvicorn's own access log would duplicate ours and bypass the route template.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def access_logger() -> FilteringBoundLogger:
    """The logger of the one access line per request (`app.middleware.access_log`)."""
    return _access_logger or get_logger(ACCESS_LOGGER)


def get_logger(name: str) -> FilteringBoundLogger:
    """A structlog logger that names its source in the `logger` field."""
    # Lazy: the real logger is built at the first call, after `configure_logging` has run.
    # (`logger` itself is a reserved keyword of structlog.get_logger, hence `logger_name`.)
    logger: FilteringBoundLogger = structlog.get_logger(logger_name=name)
    return logger
