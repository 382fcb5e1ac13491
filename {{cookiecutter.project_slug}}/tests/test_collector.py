"""The garbage collector as the service serves: start-up objects frozen, young collections rare,
and the process's own settings back once the app stops."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.main import YOUNG_COLLECTION_THRESHOLD, collector_tuned_for_serving


@pytest.fixture
def default_collector() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


@pytest.mark.usefixtures("default_collector")
def test_serving_collects_the_young_generation_rarely_and_restores_it() -> None:
    frozen = gc.get_freeze_count()
    with collector_tuned_for_serving():
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > frozen
        collections = gc.get_stats()[0]["collections"]
        kept = [[index] for index in range(5_000)]  # as the objects of requests in flight
        assert gc.get_stats()[0]["collections"] == collections
        del kept
    assert gc.get_threshold() == (700, 10, 10)
