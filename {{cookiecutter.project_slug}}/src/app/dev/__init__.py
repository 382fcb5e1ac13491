"""Development only: embedded PostgreSQL, Redis and clamd for `dev` and the tests."""
