"""Generations in chunks: identical to one batch on the CPU, sized by measured memory, and out of memory ends
in one usage error that names --size, --offload and --max-batch."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from sampler_claims import memory
from sampler_claims.engine import Engine, Request
from sampler_claims.memory import MemoryProbe, OutOfDeviceMemory
from sampler_claims.models import native_size
from sampler_claims.schedulers import DDIM, DDPM, DPM

SEEDS = tuple(range(7))


def fresh(pipe, **kw) -> Engine:
    return Engine(pipe, model_key="dummy", size=16, device="cpu", **kw)


def assert_identical(a, b) -> None:
    assert a.chunks != b.chunks or a.chunks == [len(a.request.seeds)]
    assert np.array_equal(a.images, b.images)
    assert torch.equal(a.latents, b.latents)
    assert a.unet_batch_sizes == b.unet_batch_sizes
    assert a.timesteps == b.timesteps
    if a.intermediates is not None:
        assert all(torch.equal(x, y) for x, y in zip(a.intermediates, b.intermediates, strict=True))
        assert all(torch.equal(x, y) for x, y in zip(a.x0_previews, b.x0_previews, strict=True))


@pytest.mark.parametrize("spec,steps,capture", [(DDIM, 4, False), (DPM, 5, False), (DDPM, 4, True)],
                         ids=["ddim", "dpm-solver multistep", "ddpm stochastic, captured"])
@pytest.mark.parametrize("chunk", [1, 3])
def test_chunked_generation_is_the_one_batch_generation_bit_for_bit(dummy_pipe, spec, steps, capture, chunk) -> None:
    """Per-seed CPU generators make each image independent of its batch; the VAE decodes one image at a time
    (slicing). So the seeds split into chunks of `chunk` give the same bytes as one call over all of them."""
    prompts = tuple(f"prompt {k % 3}" for k in SEEDS)
    req = Request(spec, steps, SEEDS, prompts, capture=capture)
    one = fresh(dummy_pipe, max_batch=len(SEEDS)).generate(req)
    chunked = fresh(dummy_pipe, max_batch=chunk).generate(req)  # the chunks run in CPU lanes, at once
    assert one.chunks == [len(SEEDS)]
    assert chunked.chunks == [chunk] * (len(SEEDS) // chunk) + ([len(SEEDS) % chunk] if len(SEEDS) % chunk else [])
    assert_identical(one, chunked)


def test_chunked_equals_one_batch_on_the_embedded_model(tiny_pipe) -> None:
    """The same on the embedded model at its native size, with CFG and a multistep solver."""
    def engine(**kw) -> Engine:
        return Engine(tiny_pipe, model_key="tiny", size=native_size(tiny_pipe), device="cpu", **kw)

    req = Request(DPM, 4, tuple(range(5)), "a red circle")
    assert_identical(engine().generate(req), engine(max_batch=2).generate(req))


@pytest.fixture(scope="module")
def tiny_pipe():
    from sampler_claims import paths
    from sampler_claims.models import _quiet

    from diffusers import StableDiffusionPipeline

    return _quiet(StableDiffusionPipeline.from_pretrained(paths.TINY_MODEL, safety_checker=None,
                                                          requires_safety_checker=False, local_files_only=True))


def test_a_fixed_z_t_is_drawn_whole_then_split(dummy_pipe) -> None:
    req = Request(DDIM, 3, SEEDS, "p", latents_seed=11)
    assert_identical(fresh(dummy_pipe).generate(req), fresh(dummy_pipe, max_batch=2).generate(req))


def test_latent_output_chunks_too(dummy_pipe) -> None:
    req = Request(DDIM, 3, SEEDS, "p", output="latent")
    a, b = fresh(dummy_pipe).generate(req), fresh(dummy_pipe, max_batch=4).generate(req)
    assert b.chunks == [4, 3] and torch.equal(a.latents, b.latents) and b.images is None


def test_chunk_sizes_are_logged_for_the_report(dummy_pipe) -> None:
    e = fresh(dummy_pipe, max_batch=3)
    e.generate(Request(DDIM, 2, SEEDS, "p"))
    e.generate(Request(DDIM, 2, (0,), "p"))
    assert e.chunk_log == [[3, 3, 1], [1]]


def test_vae_slicing_is_diffusers_own(dummy_pipe) -> None:
    fresh(dummy_pipe)
    assert dummy_pipe.vae.use_slicing


# ------------------------------------------------------------------ measured fit and out of memory
class FakeMemory(MemoryProbe):
    """A device with `free` bytes on which every image costs `per_image` bytes at peak."""

    def __init__(self, free: int, per_image: int) -> None:
        self._free, self.per_image, self.last = free, per_image, 0

    def free(self) -> int:
        return self._free

    def peak(self) -> int:
        return self.last * self.per_image


def limit_pipe(engine: Engine, max_images: int, probe: FakeMemory | None = None) -> list[int]:
    """Make the engine's pipeline call run out of memory above `max_images` seeds per call, as CUDA would
    (torch.OutOfMemoryError: a RuntimeError saying 'out of memory.'); returns the list of attempted sizes."""
    real = engine.call_pipe
    tried: list[int] = []

    def call(**kw):
        n = len(kw["prompt"])
        tried.append(n)
        if n > max_images:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {n} images (fake limit "
                                         f"{max_images}).")
        if probe is not None:
            probe.last = n
        return real(**kw)

    engine.call_pipe = call  # type: ignore[method-assign]
    return tried


def test_the_probe_sets_the_largest_chunk_that_fits_with_headroom(dummy_pipe) -> None:
    probe = FakeMemory(free=1000, per_image=100)  # 1000 * 0.8 / 100 = 8 images per call
    e = fresh(dummy_pipe, memory=probe)
    tried = limit_pipe(e, 100, probe)
    seeds = tuple(range(20))
    g = e.generate(Request(DDIM, 2, seeds, "p"))
    assert g.chunks == [memory.PROBE_CHUNK, 8, 8, 2]
    assert e.fits == {e.shape_key(g.request): 8}
    e.generate(Request(DDIM, 3, seeds, "p"))  # same shape: no new probe
    assert tried[len(g.chunks):] == [8, 8, 4]
    ref = fresh(dummy_pipe).generate(Request(DDIM, 2, seeds, "p"))
    assert np.array_equal(ref.images, g.images)


def test_out_of_memory_halves_the_chunk_with_accelerate_and_keeps_the_result(dummy_pipe) -> None:
    probe = FakeMemory(free=10_000, per_image=100)  # the probe says 80 fit; the device takes 3
    e = fresh(dummy_pipe, memory=probe)
    tried = limit_pipe(e, 3, probe)
    seeds = tuple(range(12))
    g = e.generate(Request(DDIM, 2, seeds, "p"))
    assert tried == [2, 10, 5, 2, 2, 2, 2, 2]  # probe, fit (80 > 10 left), halved by accelerate, kept
    assert sum(g.chunks) == 12 and max(g.chunks) <= 3
    assert np.array_equal(g.images, fresh(dummy_pipe).generate(Request(DDIM, 2, seeds, "p")).images)
    assert e.fits[e.shape_key(g.request)] <= 3


@pytest.mark.parametrize("max_batch", [None, 4])
def test_out_of_memory_at_the_smallest_chunk_names_the_fix(dummy_pipe, max_batch) -> None:
    e = fresh(dummy_pipe, memory=FakeMemory(free=1000, per_image=100), max_batch=max_batch)
    limit_pipe(e, 0)
    with pytest.raises(OutOfDeviceMemory) as info:
        e.generate(Request(DDIM, 2, SEEDS, "p"))
    msg = str(info.value)
    assert "--size" in msg and "--offload" in msg and "--max-batch" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_other_errors_pass_through_unchanged(dummy_pipe) -> None:
    e = fresh(dummy_pipe, max_batch=2)

    def broken(**kw):
        raise IndexError("index 1000 is out of bounds")

    e.call_pipe = broken  # type: ignore[method-assign]
    with pytest.raises(IndexError):
        e.generate(Request(DDIM, 2, SEEDS, "p"))


def test_an_out_of_memory_run_ends_in_one_usage_error(pytester: pytest.Pytester) -> None:
    """A fake device that fits no image: the first generation stops the run with exit code 4 and one message
    naming --size, --offload and --max-batch; no traceback, and no later test runs into the same wall."""
    pytester.makeconftest("""
import torch
from sampler_claims.engine import Engine

def call_pipe(self, **kw):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (fake limit: no image fits)")

Engine.call_pipe = call_pipe
""")
    pytester.makepyfile("""
from sampler_claims.engine import Request
from sampler_claims.schedulers import DDIM

def test_first(engine):
    engine.generate(Request(DDIM, 2, (0, 1, 2), "a red circle"))

def test_second(engine):
    engine.generate(Request(DDIM, 2, (0,), "a red circle"))
""")
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", "tiny", "--device", "cpu",
                                           "--claims-report", str(pytester.path / "r" / "index.html"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    out = result.stdout.str() + result.stderr.str()
    assert "out of memory" in out and "--size" in out and "--offload" in out and "--max-batch" in out
    assert "Traceback" not in out and "test_second" not in out.split("out of memory")[-1]
    result.stdout.no_fnmatch_line("*passed*")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the probe reads torch.cuda's allocator peak")
def test_the_cuda_probe_measures_a_fit_and_chunks_match_one_batch() -> None:
    """On a GPU: the first generation probes two seeds, the rest run at the measured fit, and the images match a
    one-batch generation (to within a step of rounding: cuBLAS is not batch-invariant)."""
    from sampler_claims.models import dummy_pipeline

    pipe = dummy_pipeline().to("cuda")
    seeds = tuple(range(6))
    chunked = Engine(pipe, model_key="dummy", size=16, device="cuda").generate(Request(DDIM, 3, seeds, "p"))
    assert chunked.chunks[0] == memory.PROBE_CHUNK and chunked.extra["peak_gpu_bytes"] > 0
    one = Engine(pipe, model_key="dummy", size=16, device="cuda", max_batch=len(seeds)).generate(
        Request(DDIM, 3, seeds, "p"))
    assert np.abs(one.images.astype(int) - chunked.images.astype(int)).max() <= 1


def test_cpu_lanes_run_at_once_and_give_the_one_batch_generation(dummy_pipe) -> None:
    """On two CPU threads the seeds run as two lanes at once, each on its own thread and pipeline at one torch
    thread: the same bytes as one batch, U-Net calls counted once per step, and the caller's threads restored.
    (conftest's autouse fixture restores the thread counts the tests set.)"""
    torch.set_num_threads(2)
    e = fresh(dummy_pipe)
    real, seen = e.call_pipe, []

    def call(**kw):
        seen.append((threading.get_ident(), id(kw["pipe"]), torch.get_num_threads()))
        return real(**kw)

    e.call_pipe = call  # type: ignore[method-assign]
    req = Request(DDPM, 4, SEEDS, "p", capture=True)
    lanes = e.generate(req)
    one = fresh(dummy_pipe, max_batch=len(SEEDS)).generate(req)
    assert lanes.chunks == [4, 3] and one.chunks == [len(SEEDS)]
    assert_identical(lanes, one)
    assert lanes.unet_batch_sizes == [2 * len(SEEDS)] * 4  # CFG: both lanes' samples, once per step
    assert len({t for t, _, _ in seen}) == 2 and len({p for _, p, _ in seen}) == 2
    assert {n for _, _, n in seen} == {1} and torch.get_num_threads() == 2


def test_one_thread_means_one_lane(dummy_pipe) -> None:
    torch.set_num_threads(1)
    assert fresh(dummy_pipe).generate(Request(DDIM, 2, SEEDS, "p")).chunks == [len(SEEDS)]


def test_a_failing_lane_stops_the_others_and_its_error_passes_through(dummy_pipe) -> None:
    torch.set_num_threads(2)
    e = fresh(dummy_pipe)
    real, steps_run = e.call_pipe, []

    def call(**kw):
        if len(kw["prompt"]) == 3:  # the second lane
            raise IndexError("index 1000 is out of bounds")
        on_step = kw["callback_on_step_end"]

        def counting(p, i, t, k):
            steps_run.append(i)
            time.sleep(0.05)  # give the failing lane time to fail while this one is still stepping
            return on_step(p, i, t, k)

        return real(**{**kw, "callback_on_step_end": counting})

    e.call_pipe = call  # type: ignore[method-assign]
    with pytest.raises(IndexError):
        e.generate(Request(DDIM, 50, SEEDS, "p"))
    assert len(steps_run) < 50 and torch.get_num_threads() == 2


def test_lanes_do_not_share_a_tokenizer_or_a_scheduler(dummy_pipe) -> None:
    """A fast tokenizer keeps its padding between calls and the pipeline pads each prompt two ways, so lanes on one
    tokenizer sometimes encoded a prompt with the other lane's padding (1 to 2 in 1,000 two-lane generations gave
    other images). Each lane's tokenizer is its own: padding set in one is not seen in another."""
    torch.set_num_threads(3)
    e = fresh(dummy_pipe)
    e.generate(Request(DDIM, 1, SEEDS, "a red circle"))
    pipes = [e.pipe, *e._lane_pipes]
    assert len(pipes) == 3
    assert len({id(p.tokenizer) for p in pipes}) == 3 and len({id(p.scheduler) for p in pipes}) == 3
    assert len({id(p.unet) for p in pipes}) == 1  # the modules themselves are shared
    before = [p.tokenizer._tokenizer.padding for p in pipes]
    pipes[1].tokenizer(["a red circle"], padding="longest")
    pipes[2].tokenizer(["a red circle"], padding="max_length", max_length=12)
    assert pipes[0].tokenizer._tokenizer.padding == before[0]
    assert pipes[1].tokenizer._tokenizer.padding != pipes[2].tokenizer._tokenizer.padding
