"""Counting what a generation does: U-Net calls with their batch sizes, and random-tensor draws.

Counting through a forward pre-hook (not by arithmetic on steps) is what lets claims such as
`cfg-two-passes` and `dpm-multi-point` be refuted by the code that really runs.
"""
from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch


@dataclass
class UNetCalls:
    batch_sizes: list[int] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return len(self.batch_sizes)

    @property
    def samples(self) -> int:
        """Sample evaluations: a CFG call of batch 2B counts 2B."""
        return sum(self.batch_sizes)


@contextlib.contextmanager
def count_unet_calls(unet: torch.nn.Module, *, this_thread: bool = False) -> Iterator[UNetCalls]:
    """Count the U-Net's calls during the block; with `this_thread`, only those made on the calling thread (a CPU
    lane of the engine shares the U-Net with the other lanes of its generation)."""
    record = UNetCalls()
    owner = threading.get_ident()

    def hook(_module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if this_thread and threading.get_ident() != owner:
            return
        sample = args[0] if args else kwargs["sample"]
        record.batch_sizes.append(int(sample.shape[0]))

    handle = unet.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield record
    finally:
        handle.remove()


#: Modules that bind `randn_tensor` by name; patching the name in each is what catches every draw.
RANDN_MODULES = (
    "diffusers.schedulers.scheduling_ddpm",
    "diffusers.schedulers.scheduling_ddim",
    "diffusers.schedulers.scheduling_dpmsolver_multistep",
    "diffusers.schedulers.scheduling_euler_ancestral_discrete",
    "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion",
)


@dataclass
class Draws:
    shapes: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.shapes)


@contextlib.contextmanager
def count_random_draws() -> Iterator[Draws]:
    """Count diffusers' randn_tensor calls (z_T and per-step noise) during the block."""
    record = Draws()
    patched: list[tuple[object, object]] = []
    for name in RANDN_MODULES:
        module = importlib.import_module(name)
        original = getattr(module, "randn_tensor", None)
        if original is None:
            continue

        def counting(shape, *args, _original=original, **kwargs):  # type: ignore[no-untyped-def]
            record.shapes.append(tuple(shape))
            return _original(shape, *args, **kwargs)

        setattr(module, "randn_tensor", counting)
        patched.append((module, original))
    try:
        yield record
    finally:
        for module, original in patched:
            setattr(module, "randn_tensor", original)
