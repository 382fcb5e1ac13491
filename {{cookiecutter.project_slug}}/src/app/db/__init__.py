"""Database access: engine, sessions and tenancy."""
