"""A tenant-scoped Redis cache that does not stampede (REL-CACHE)."""
