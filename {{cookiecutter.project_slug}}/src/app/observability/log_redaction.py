"""Redaction of every log line: secrets masked by key name and by shape, at any depth.

Run as a structlog processor on our own lines and on the standard library's (uvicorn, SQLAlchemy,
Celery), exception text included (`app.observability.logging`). It runs on every line, so the
common case (no secret-looking value) is made cheap: one substring screen and a length test, no
regex.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from structlog.typing import EventDict, WrappedLogger

REDACTED = "[REDACTED]"

_SENSITIVE_KEY = re.compile(
    r"(authorization|cookie|password|passwd|pwd|secret|token|api[-_]?key|credential|"
    r"private[-_]?key|session[-_]?id|dsn|signature)",
    re.IGNORECASE,
)
# Values that are credentials whatever key they sit under.
_SENSITIVE_VALUE = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # API keys (`ak_<id>_<secret>`) and refresh tokens (`rt1.<tenant>.<secret>`): the secret
    # goes, the public key id or tenant stays, so a line still says whose credential it was.
    (re.compile(r"\b(ak_[0-9a-f]{32}_)[A-Za-z0-9_-]+"), r"\1" + REDACTED),
    (re.compile(r"\b(rt1\.[0-9a-f]{32}\.)[A-Za-z0-9_-]+"), r"\1" + REDACTED),
    # Standard Webhooks secrets (whsec_) and signing keys (whsk_), whatever key holds them.
    (re.compile(r"\bwhs(?:ec|k)_[A-Za-z0-9+/=]+"), REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^@\s/]+@"), r"\1:" + REDACTED + "@"),
    # key=value and "key": "value" pairs inside free text (query strings, raw JSON bodies).
    (
        re.compile(
            r"""(?i)(["']?(?:password|passwd|secret|token|api[-_]?key)["']?\s*[:=]\s*["']?)"""
            r"""[^"'&\s,}]+"""
        ),
        r"\1" + REDACTED,
    ),
)
# Lower-case words that every pattern above needs to find first (a superset of them). Most log
# values ("request", "/api/v1/notes/{note_id}", a request id) hold none of them and skip the
# substitutions. Plain substring tests, not one case-insensitive regex: about 5x cheaper per line.
_SENSITIVE_MARKERS = (
    "bearer", "basic", "eyj", "://", "passw", "secret", "token", "apikey", "api-key", "api_key",
    "whs", "ak_", "rt1.",
)  # fmt: skip
# A device id, or any other bare `secrets.token_urlsafe(32)`: 43 base64url characters standing
# alone, with no prefix to look for. Masked only when upper and lower case mix, as in all but
# about 1e-10 of random ones, so a 43-character snake_case name stays readable.
_BARE_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])")
_BARE_TOKEN_RUN = re.compile(r"[A-Za-z0-9_-]{43}")


def _mask_bare_token(match: re.Match[str]) -> str:
    value = match.group(0)
    return value if value.islower() or value.isupper() else REDACTED


_MAX_DEPTH = 6
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})  # values that cannot hold a secret


def _has_marker(text: str) -> bool:
    lowered = text.lower()
    for marker in _SENSITIVE_MARKERS:  # noqa: SIM110 - a loop costs half of any(<generator>)
        if marker in lowered:
            return True
    return False


def _might_hold_bare_token(texts: list[str]) -> bool:
    # Most values are shorter than one bare token (a request id has 32 characters): no search.
    for text in texts:  # noqa: SIM110 - a loop costs half of any(<generator>)
        if len(text) >= 43 and _BARE_TOKEN_RUN.search(text) is not None:
            return True
    return False


def _might_be_sensitive(text: str) -> bool:
    return _has_marker(text) or _might_hold_bare_token([text])


def _redact_text(text: str) -> str:
    if not _might_be_sensitive(text):
        return text
    for pattern, replacement in _SENSITIVE_VALUE:
        text = pattern.sub(replacement, text)
    return _BARE_TOKEN.sub(_mask_bare_token, text)


# Key names repeat on every line (`event`, `route`, ...): each is decided once. A plain dict
# read inline costs half of an lru_cache call; the bound keeps odd keys from growing it forever.
_KEY_VERDICTS: dict[str, bool] = {}


def _is_sensitive_key(key: str) -> bool:
    verdict = _KEY_VERDICTS.get(key)
    if verdict is None:
        verdict = _SENSITIVE_KEY.search(key) is not None
        if len(_KEY_VERDICTS) < 4096:
            _KEY_VERDICTS[key] = verdict
    return verdict


def redact(value: Any, depth: int = 0) -> Any:
    """`value` with secrets masked by key name and by shape, recursively."""
    if isinstance(value, str):
        return _redact_text(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED
            if isinstance(key, str) and _is_sensitive_key(key)
            else redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item, depth + 1) for item in value]
    return value


def redact_sensitive(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask secrets by key name and by shape, recursively, including rendered exceptions.

    `redact(event_dict)`, unrolled for the top level: it runs on every log line, and most values
    there are short strings and numbers. The strings are screened together, with one test for
    the markers, and only those long enough to hold a bare token are searched for one.
    """
    texts: list[str] = []
    for key, value in event_dict.items():
        sensitive = _KEY_VERDICTS.get(key)  # the usual hit, read inline
        if sensitive is None:
            sensitive = _is_sensitive_key(key)
        if sensitive:
            event_dict[key] = REDACTED
        elif type(value) is str:  # exact types: cheaper than isinstance, subclasses go to redact()
            texts.append(value)
        elif type(value) not in _PLAIN_TYPES:
            event_dict[key] = redact(value, 1)
    # The markers hold no newline, so none can match across the joints. Rarely true: then each
    # string is redacted on its own (a masked one, `[REDACTED]`, holds no marker).
    if texts and (_has_marker("\n".join(texts)) or _might_hold_bare_token(texts)):
        for key, value in event_dict.items():
            if type(value) is str:
                event_dict[key] = _redact_text(value)
    return event_dict
