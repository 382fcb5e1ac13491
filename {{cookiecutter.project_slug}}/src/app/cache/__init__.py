"""Redis: the process's connections and a tenant-scoped cache that does not stampede (REL-CACHE)."""
