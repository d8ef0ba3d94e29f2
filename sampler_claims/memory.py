"""How many seeds go through the pipeline at once: measured, not guessed.

A request's seeds run in chunks. The first generation of each shape (size, CFG, decoding, captures:
`Engine.shape_key`) runs a small probe chunk and reads the device's peak memory for it; the chunk for the
rest of the run is the largest that fits the free memory with headroom. If a chunk still runs out of memory,
accelerate's `find_executable_batch_size` retries it smaller (halved here). Out of memory at one seed per
call is a usage error naming the options that help: `--size`, `--offload`, `--max-batch`.

On the CPU there is no peak counter to read, so a request runs as one batch unless `--max-batch` says
otherwise (the machine's RAM holds the embedded model's batches many times over).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: Seeds in the probe chunk: two, so that the per-image peak is not only the fixed cost of one call.
PROBE_CHUNK = 2
#: Share of the free memory a chunk may plan to use: the rest absorbs fragmentation and what the probe
#: did not see (a longer prompt, the decoder's peak on another seed).
HEADROOM = 0.8


class OutOfDeviceMemory(RuntimeError):
    """Out of memory at the smallest chunk; the message names the options that fix it."""


class MemoryProbe:
    """Free memory and the peak of the last call on one device. The base class knows nothing (the CPU)."""

    def free(self) -> int | None:
        return None

    def reset_peak(self) -> None:
        """Start a measurement: the next `peak()` is the most allocated since, above what was allocated now."""

    def peak(self) -> int | None:
        return None


class CudaMemory(MemoryProbe):
    """torch.cuda's allocator statistics: the peak allocated above the baseline, and the free memory counted
    with what the caching allocator holds but does not use."""

    def __init__(self, device: str) -> None:
        self.device = torch.device(device)
        self._baseline = 0

    def free(self) -> int:
        free, _total = torch.cuda.mem_get_info(self.device)
        cached = torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        return int(free + cached)

    def reset_peak(self) -> None:
        torch.cuda.reset_peak_memory_stats(self.device)
        self._baseline = torch.cuda.memory_allocated(self.device)

    def peak(self) -> int:
        return int(torch.cuda.max_memory_allocated(self.device) - self._baseline)


def probe_for(device: str) -> MemoryProbe | None:
    """The probe of a device: CUDA's allocator statistics, else none (one batch)."""
    return CudaMemory(device) if device.startswith("cuda") else None


def fit_from_probe(memory: MemoryProbe, peak: int | None, probed: int) -> int | None:
    """The largest chunk that fits the free memory with HEADROOM, from the probe's peak over `probed` seeds;
    None when the probe could not be read."""
    free = memory.free()
    if peak is None or free is None or peak <= 0:
        return None
    per_image = peak / probed  # the fixed cost of a call is spread over the probe's seeds: an overestimate
    return max(1, int(free * HEADROOM // per_image))


def oom_message(device: str, shape: str, chunk: int, forced: bool) -> str:
    offload = "--offload (accelerate's model CPU offload, for GPUs under 8 GB)"
    size = "a smaller --size (SD 1.5 is trained at 512)"
    if forced and chunk > 1:
        return (f"out of memory on {device} generating {shape} at --max-batch {chunk}. Pass a smaller --max-batch (or "
                f"leave it out: the engine measures what fits), {size}, or {offload}; the run stopped here rather than "
                "fail every claim")
    return (f"out of memory on {device} generating {shape} even at one seed per pipeline call (--max-batch 1). Pass "
            f"{size} or {offload}; the run stopped here rather than fail every claim")


def is_oom(exc: BaseException) -> bool:
    """accelerate's own test of an out-of-memory error (CUDA, MPS, XPU, CPU allocator)."""
    from accelerate.utils.memory import should_reduce_batch_size

    return isinstance(exc, Exception) and should_reduce_batch_size(exc)


def chunk_summary(chunks: list[list[int]]) -> dict[str, int]:
    """Generations by how they were split, for claims.json: {"8x4": 3, "1x1": 12} = three generations of eight
    chunks of four seeds, twelve single-seed calls; an uneven split is written out ("2+8+8+2")."""
    out: dict[str, int] = {}
    for c in chunks:
        key = f"{len(c)}x{c[0]}" if len(set(c)) == 1 else "+".join(map(str, c))
        out[key] = out.get(key, 0) + 1
    return out


def run_in_chunks(n: int, shape: str, fits: dict[str, int], memory: MemoryProbe | None, max_batch: int | None,
                  run: Callable[[int, int], Any], parts: list[Any], device: str = "cpu") -> None:
    """Run seeds 0..n-1 as `run(start, count)` calls, appending each result to `parts`.

    The chunk is `max_batch` when given (forced: out of memory there is the usage error), else the measured
    fit of this shape, else a PROBE_CHUNK probe whose peak sets the fit, else (no probe) all n at once.
    On an out-of-memory error accelerate's find_executable_batch_size retries the chunk halved and the fit
    of the shape is lowered for the rest of the run; seeds already generated are kept.
    """
    from accelerate.utils import find_executable_batch_size

    if max_batch:
        start = max_batch
    elif shape in fits:
        start = fits[shape]
    elif memory is None:
        start = n
    else:
        start = min(PROBE_CHUNK, n)
    pos = 0
    current = tried = start

    def smaller() -> int:
        nonlocal current
        current = 0 if max_batch else tried // 2
        if current:
            fits[shape] = current
        return current

    def go(batch_size: int) -> None:
        nonlocal pos, current, tried
        current = batch_size
        while pos < n:
            k = tried = min(current, n - pos)
            measuring = memory is not None and not max_batch and shape not in fits
            part = run(pos, k)
            parts.append(part)
            pos += k
            if measuring:
                fit = fit_from_probe(memory, part.extra.get("peak_bytes"), k)
                if fit is not None:
                    fits[shape] = current = fit

    if n == 1 or (memory is None and not max_batch):
        # Calls with nothing measured to split by (single seeds, the CPU): no retry loop up front, whose
        # garbage collection before every call would cost more than the call; it takes over on an OOM.
        try:
            go(start)
            return
        except Exception as exc:  # noqa: BLE001 - only out-of-memory is retried
            if not is_oom(exc):
                raise
            if smaller() == 0:
                raise OutOfDeviceMemory(oom_message(device, shape, min(start, n), bool(max_batch))) from None
    try:
        find_executable_batch_size(go, starting_batch_size=current, reduce_batch_size_fn=smaller)()
    except RuntimeError as exc:
        if "No executable batch size found" in str(exc):
            raise OutOfDeviceMemory(oom_message(device, shape, max_batch or 1, bool(max_batch))) from None
        raise
