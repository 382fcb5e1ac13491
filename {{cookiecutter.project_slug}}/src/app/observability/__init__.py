"""Observability: structured logs, traces and metrics, and how noise is kept down."""
