"""The real worker of tests/worker, for the delivery tests of this folder."""

from tests.worker.conftest import worker, worker_env, worker_settings

__all__ = ["worker", "worker_env", "worker_settings"]
