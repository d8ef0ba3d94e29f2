"""CPU threads: the generations use this process's share of the cores, the timing rounds one thread."""
from __future__ import annotations

import pytest
import torch

from sampler_claims import threads


def test_generations_take_the_cores_shared_among_xdist_workers(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(threads, "cores", lambda: 8)
    assert threads.generation_threads(None) == 8
    assert threads.generation_threads(None, workers=3) == 2
    assert threads.generation_threads(None, workers=16) == 1
    assert threads.generation_threads(5, workers=4) == 5  # --threads N wins


def test_xdist_worker_count_comes_from_the_environment(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert threads.xdist_workers() == 1
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    assert threads.xdist_workers() == 4


def test_timing_runs_on_one_thread_on_the_cpu_and_restores_the_count() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with threads.for_timing("cpu") as n:
            assert n == torch.get_num_threads() == threads.TIMING_THREADS == 1
        assert torch.get_num_threads() == 2
        with threads.for_timing("cuda:0") as n:  # elsewhere the CPU threads are left alone
            assert n == 2
    finally:
        torch.set_num_threads(before)



_pinned: dict[str, int] = {}


def test_a_test_that_pins_one_thread_does_not_leak_it_into_the_claims() -> None:
    """tests/conftest.py restores the count after each test (the claims follow tests/ in one session); the next
    test checks that it did."""
    _pinned["before"] = torch.get_num_threads()
    torch.set_num_threads(1)


def test_the_thread_count_is_back_after_a_pinning_test() -> None:
    if "before" not in _pinned:
        pytest.skip("runs after the pinning test, which ran in another process")
    assert torch.get_num_threads() == _pinned["before"]
