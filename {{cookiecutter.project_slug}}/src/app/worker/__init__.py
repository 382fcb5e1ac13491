"""Background work: the Celery app, its retry and dead-letter policy, and the outbox relay."""
