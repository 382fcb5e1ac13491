"""Idempotency keys for unsafe POSTs (IETF draft "The Idempotency-Key HTTP Header Field")."""
