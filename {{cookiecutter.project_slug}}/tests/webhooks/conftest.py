"""The real worker of tests/worker, for the delivery tests of this folder.

The test receivers listen on loopback, which the destination guard refuses: these tests opt in
through WEBHOOK_ALLOWED_NETWORKS, the development and test setting (production refuses it).
"""

import pytest

from tests.worker.conftest import worker, worker_env, worker_settings

__all__ = ["worker", "worker_env", "worker_settings"]

LOOPBACK = "127.0.0.0/8,::1/128"


@pytest.fixture(scope="module")
def worker_extra_env() -> dict[str, str]:
    """The worker may deliver to the loopback receivers of these tests."""
    return {"WEBHOOK_ALLOWED_NETWORKS": LOOPBACK}
