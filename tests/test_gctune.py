"""project.gctune: the web process's collector settings (why these: docs/benchmarks.md)."""

import gc

import pytest

from project.gctune import DEFAULT_THRESHOLDS, tune_gc


@pytest.fixture(autouse=True)
def _restore_gc():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)
    gc.unfreeze()


def test_defaults_collect_the_middle_generation_often_and_the_oldest_rarely(monkeypatch):
    monkeypatch.delenv("GC_THRESHOLDS", raising=False)
    assert tune_gc() == DEFAULT_THRESHOLDS == gc.get_threshold()
    young, middle, old = DEFAULT_THRESHOLDS
    # A socket's objects are promoted after at most 10 young collections, and a full one
    # still waits for as many net allocations as before (200 million).
    assert middle <= 10
    assert young * middle * old >= 200_000_000
    assert gc.get_freeze_count() > 0  # start-up objects are out of every later collection


def test_environment_overrides_and_default_keeps_pythons(monkeypatch):
    monkeypatch.setenv("GC_THRESHOLDS", "5000,20,500")
    assert tune_gc() == (5000, 20, 500)
    gc.set_threshold(700, 10, 10)
    monkeypatch.setenv("GC_THRESHOLDS", "default")
    assert tune_gc() == (700, 10, 10)
