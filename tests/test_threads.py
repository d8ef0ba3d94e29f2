"""CPU threads: the generations use this process's share of the cores, the timing rounds one thread."""
from __future__ import annotations

from pathlib import Path

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



def test_a_test_that_pins_one_thread_does_not_leak_it_into_the_claims(pytester: pytest.Pytester) -> None:
    """tests/conftest.py restores torch's thread count after each test, because the claims follow tests/ in one
    session (the README's test command). Two tests run in order in an inner session: one pins a thread, the next
    reads the count. With this folder's conftest the count is back; without it, it leaks (the check can fail)."""
    torch.set_num_threads(2)  # the outer fixture restores whatever it was
    pytester.makepyfile(test_pin="""
        import torch

        def test_pins_one_thread():
            torch.set_num_threads(1)

        def test_reads_the_count_after_it():
            assert torch.get_num_threads() == 2
    """)
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist").assert_outcomes(passed=1, failed=1)
    torch.set_num_threads(2)
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:xdist").assert_outcomes(passed=2)
