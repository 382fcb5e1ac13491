"""Calls to other services: one client factory with timeouts, bounded retries and a breaker."""
