"""Metric names in PromQL expressions (and Grafana's `label_values()` variable queries).

promtool parses PromQL but cannot list the names an expression reads, so this extractor does it
with a few strict steps: drop comments, strings, label matchers `{…}`, ranges `[…]`, the label
lists of `by`/`without`/`on`/`ignoring`/`group_left`/`group_right`, Grafana variables, `offset`
durations and numbers; every identifier left that is not followed by `(` (a function or an
aggregation) and is not a keyword is a metric name.
"""

from __future__ import annotations

import re

KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "by", "without", "on", "ignoring"}
    | {"group_left", "group_right"}
)
_STEPS = (
    (re.compile(r"#[^\n]*"), " "),  # comments
    (re.compile(r'"(?:[^"\\]|\\.)*"' r"|'(?:[^'\\]|\\.)*'|`[^`]*`"), '""'),  # strings
    (re.compile(r"\{[^}]*\}"), " "),  # label matchers (strings are gone, so no `}` inside)
    (re.compile(r"\[[^\]]*\]"), " "),  # range and subquery selectors
    (re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"), " "),
    (re.compile(r"\$\{[^}]*\}|\$\w+"), " "),  # Grafana variables: $job, ${job}, $__rate_interval
    (re.compile(r"\boffset\s+-?\w+|@\s*[\w.]+(?:\(\))?"), " "),  # offset 5m, @ 1609746000
    (re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\w*)"), " "),
)
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\s*\((?P<args>.*)\)\s*$", re.DOTALL)
_QUERY_RESULT = re.compile(r"^\s*query_result\s*\((?P<expr>.*)\)\s*$", re.DOTALL)


def grafana_query_expr(query: str) -> str:
    """The PromQL inside a Grafana Prometheus variable query (`label_values(expr, label)`,
    `query_result(expr)`), or the query itself."""
    if match := _LABEL_VALUES.match(query):
        args = match["args"]
        # label_values(label) reads no metric; label_values(expr, label) reads expr's.
        return args.rsplit(",", 1)[0] if "," in args else ""
    if match := _QUERY_RESULT.match(query):
        return match["expr"]
    return query


def metric_names(expr: str) -> set[str]:
    """Every metric name the PromQL expression `expr` selects."""
    text = expr
    for pattern, replacement in _STEPS:
        text = pattern.sub(replacement, text)
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or match[0].lower() in KEYWORDS:
            continue
        names.add(match[0])
    return names
