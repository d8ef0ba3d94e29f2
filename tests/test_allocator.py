"""The CPU runs' allocator setting: taken once, harmless where the C library lacks it, and the same numbers."""
from __future__ import annotations

import platform

import pytest
import torch

from sampler_claims import allocator


def test_the_thresholds_are_set_once_and_say_whether_they_took() -> None:
    first = allocator.keep_freed_memory()
    assert isinstance(first, bool)
    assert allocator.keep_freed_memory() is first, "once per process"
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first, "glibc has mallopt: the thresholds must take"


def test_a_library_without_mallopt_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_done", None)

    def no_libc(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError("no C library here")

    monkeypatch.setattr(allocator.ctypes, "CDLL", no_libc)
    assert allocator.keep_freed_memory() is False


def test_where_the_memory_comes_from_does_not_change_a_result() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 4, 32, 32)
    conv = torch.nn.Conv2d(4, 32, 3, padding=1)
    before = conv(x)
    allocator.keep_freed_memory()
    assert torch.equal(conv(x), before)
