"""How many CPU threads the generations use: the cores this process may use, one for the timing rounds.

On the CPU the engine turns the generation threads into lanes (sampler_claims.engine): a request's seeds split
into one share per thread, each share run on its own thread with torch at one thread. On the 2-core machine this
suite is built on, two threads used by OpenMP inside each call had made the embedded model's U-Net 1.15x (one
seed per call) to 1.6x (32 seeds) faster than one, and a serial `pytest claims/` went from 322 s to 239 s with
identical scores; lanes do better again (`--claim comparable-quality` 154 s against 185 s, interleaved), because
a small U-Net's operators are too short for OpenMP's barriers. Timing is another matter: with
a neighbour on the other core, two threads wait for each other and one call can take many times the next (step
times varied up to 50x), so the timing rounds run on one thread, the setting every timing pilot in the registry
was measured at. Under xdist the cores are shared among the workers.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: Threads of the timing rounds on the CPU.
TIMING_THREADS = 1


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def generation_threads(requested: int | None, workers: int = 1) -> int:
    """--threads N, else this process's share of the cores (at least one)."""
    return requested or max(1, cores() // max(workers, 1))


def xdist_workers() -> int:
    """The number of xdist workers this process is one of (1 outside xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)


@contextmanager
def pinned(n: int | None) -> Iterator[int]:
    """Run the block on `n` torch threads (None: unchanged); restore the caller's count after."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@contextmanager
def for_timing(device: str) -> Iterator[int]:
    """Run the block on TIMING_THREADS torch threads on the CPU (elsewhere unchanged); restore after."""
    with pinned(TIMING_THREADS if device == "cpu" else None) as n:
        yield n
