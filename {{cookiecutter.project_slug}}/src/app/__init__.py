"""The service package. The project's name lives in pyproject.toml; the package is always `app`."""
