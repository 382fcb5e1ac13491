"""Data lifecycle: what expires when, and the purge job that enforces it."""
