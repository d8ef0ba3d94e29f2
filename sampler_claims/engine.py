"""The one generation engine every claim calls.

It runs a request's seeds through the pipeline with one CPU generator per seed (image k is reproducible on
its own, diffusers #3158), in chunks that fit the device (sampler_claims.memory: a peak-memory probe on the
first generation of each shape, accelerate's `find_executable_batch_size` on an out-of-memory error, or
`--max-batch`), decodes with diffusers' VAE slicing, counts U-Net calls through a hook, times the call, guards
against NaN and blank output, reports progress per step, and caches results for the session keyed by every
input, so that claims sharing a generation compute it once. Timing runs pass `cached=False`.

Every image has its own generator, the VAE decodes one image at a time and the time embedding is computed
once per call, so a chunked generation is the one-batch generation up to the CPU kernels' rounding: identical
bit for bit at the chunk sizes tests/test_chunking.py covers; at 32 seeds against chunks of 4 on the embedded
model, oneDNN's 1x1 convolutions (a GEMM over batch x pixels) round differently by up to 1e-6 (README).

On the CPU every pipeline call runs on one torch thread, and the cores are used by lanes: a request's seeds split
into one share per generation thread (or into --max-batch chunks), run at once, each lane through its own
pipeline over the same components. A small U-Net's operators are too short for OpenMP's threads to pay for
their barriers. On the 2-core machine this suite is built on, two lanes of 32 embedded-model seeds ran DDPM@100
1.6-1.9x as fast as one batch of 64 on two threads, alone, with identical images; inside a run, interleaved,
`pytest claims/ --claim comparable-quality` took 147 and 160 s against 193 and 178 s. One thread per call makes
a chunk's images independent of the thread count; the shares are not (one per lane), so on another core count a
pixel can differ by 1/255, as between any two chunk sizes.
"""
from __future__ import annotations

import copy
import functools
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from .calibration import Tally
from .counters import count_unet_calls
from .memory import MemoryProbe, is_oom, probe_for, run_in_chunks
from .metrics import guard
from .lanes import lane_chunks
from .schedulers import SchedulerSpec, canonical, make_scheduler
from .threads import pinned

DEFAULT_GUIDANCE = 7.5


@dataclass(frozen=True)
class Request:
    """Every input that decides a generation; equal requests give equal results and share a cache entry."""

    scheduler: SchedulerSpec
    steps: int
    seeds: tuple[int, ...]
    #: One prompt for every seed, or one prompt per seed (a tuple as long as `seeds`).
    prompt: str | tuple[str, ...]
    guidance: float = DEFAULT_GUIDANCE
    eta: float = 0.0
    #: If set, z_T comes from this seed for every image, and the generators only drive per-step noise.
    latents_seed: int | None = None
    #: Keep a clone of the latents after every step, and the scheduler's x0 preview where it has one.
    capture: bool = False
    output: str = "np"  # "np" (uint8 images and final latents) or "latent" (latents only)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if not self.seeds:
            raise ValueError("a request needs at least one seed")
        if isinstance(self.prompt, tuple) and len(self.prompt) != len(self.seeds):
            raise ValueError(f"{len(self.prompt)} prompts for {len(self.seeds)} seeds")

    @property
    def prompts(self) -> list[str]:
        return list(self.prompt) if isinstance(self.prompt, tuple) else [self.prompt] * len(self.seeds)

    @property
    def label(self) -> str:
        g = f", guidance {self.guidance}" if self.guidance != DEFAULT_GUIDANCE else ""
        e = f", eta {self.eta}" if self.eta else ""
        return f"{self.scheduler.label} @ {self.steps} steps{g}{e}"

    def describe(self) -> str:
        seeds = ",".join(map(str, self.seeds))
        prompt = self.prompt if isinstance(self.prompt, str) else f"{len(set(self.prompt))} prompts"
        return f"{self.label}, seeds [{seeds}], prompt {prompt!r}"


@dataclass
class Generation:
    request: Request
    images: np.ndarray | None  # [B, H, W, 3] uint8
    latents: torch.Tensor  # final latents, CPU float32
    unet_batch_sizes: list[int]
    #: Wall time of the pipeline call (CUDA synchronised before and after).
    seconds: float
    scheduler_config: dict[str, Any]
    timesteps: list[int]
    intermediates: list[torch.Tensor] | None = None
    x0_previews: list[torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chunks(self) -> list[int]:
        """The seeds per pipeline call this generation ran in (one entry: one batch)."""
        return list(self.extra.get("chunks", [len(self.request.seeds)]))

    @property
    def cpu_seconds(self) -> float:
        """CPU time of this process during the call: on a shared CPU it barely moves when a neighbour
        takes a core, where wall time does."""
        return float(self.extra.get("cpu_seconds", self.seconds))

    @property
    def unet_calls(self) -> int:
        return len(self.unet_batch_sizes)

    def image(self, k: int = 0) -> np.ndarray:
        assert self.images is not None, "this generation kept latents only"
        return self.images[k]


def time_embedding_once_per_call(unet: Any) -> None:
    """Make the U-Net's result for an image independent of how many images share the call.

    Every image of a pipeline call is at the same timestep, yet diffusers' U-Net expands t to the batch and runs
    the time-embedding MLP and every resnet's `time_emb_proj` as a matrix product with one row per image. CPU GEMM
    kernels round differently for a different number of rows (measured: up to 1e-6 in the U-Net's output between
    a batch of 14 and chunks of 2, on the embedded model and on random weights), so a chunked generation would
    drift from the one-batch generation. Embedding t once (a batch of one) and letting the resnets broadcast it
    over the images removes that batch-size-dependent product (what is left is the 1x1 convolutions' kernel choice
    at large batches, see the module docstring). A call whose timesteps differ per image keeps the stock path.
    """
    if getattr(unet, "_sampler_claims_time_once", False):
        return
    stock = unet.get_time_embed

    def get_time_embed(sample: torch.Tensor, timestep: Any) -> Any:
        if torch.is_tensor(timestep) and timestep.numel() > 1:
            flat = timestep.flatten()
            if not bool((flat == flat[0]).all()):
                return stock(sample=sample, timestep=timestep)
            timestep = flat[:1]
        return stock(sample=sample[:1], timestep=timestep)

    unet.get_time_embed = get_time_embed
    unet._sampler_claims_time_once = True


#: torch.compile's dynamic setting for the U-Net: None compiles the first batch size static and, at the second
#: size, one graph with a dynamic batch that serves every size after (a batch of one is specialised apart), so a
#: run of lanes of 16, 32 and 64 seeds and single seeds compiles about three graphs instead of one per size.
COMPILE_DYNAMIC: bool | None = None


def compile_unet(unet: Any, dynamic: bool | None = COMPILE_DYNAMIC) -> None:
    """Compile the U-Net's forward with torch.compile (inductor, on the CPU and on CUDA), in place.

    The forward is compiled, not the module's `__call__`: the engine's counters are forward pre-hooks, registered
    and removed around every chunk, and a hook traced into the graph would count at compile time only (and make
    dynamo recompile whenever the hooks change). The CPU lanes call the one compiled forward from several threads;
    dynamo compiles under its global lock, and the compiled kernels run on the calling thread's torch threads."""
    if getattr(unet, "_sampler_claims_compiled", False):
        return
    import torch._dynamo

    # every batch size a run makes, on up to three graphs, with room for a scheduler that varies more
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 16)
    unet.forward = torch.compile(unet.forward, dynamic=dynamic)
    unet._sampler_claims_compiled = True


def cpu_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per image, as diffusers' own tests use, for results that match across devices."""
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """The pipeline's float [0, 1] output rounded to uint8 the way diffusers' numpy_to_pil does."""
    return (images * 255).round().astype(np.uint8)


#: Host memory the engine may keep decoded trajectories in (decode_captured). The embedded model's decodes in a
#: default run are under 10 MB in all; SD 1.5's at 512 px are about 250 MB per 32-seed, 10-step trajectory.
DECODED_CACHE_BYTES = 512 * 2**20


class Engine:
    def __init__(self, pipe: StableDiffusionPipeline, *, model_key: str, size: int, device: str,
                 check: bool = True, max_batch: int | None = None, memory: MemoryProbe | None = None,
                 progress: Any = None, compile: bool = False, channels_last: bool = False) -> None:
        self.pipe = pipe
        self.model_key = model_key
        self.size = size
        self.device = device
        self.check = check
        #: --max-batch: force at most this many seeds per pipeline call; None = measure what fits.
        self.max_batch = max_batch
        #: Free and peak memory where the generations run (None: no probe, e.g. the CPU: one batch).
        self.memory = memory if memory is not None else probe_for(device)
        #: The largest chunk that fits, per generation shape (measured once per shape, halved on OOM).
        self.fits: dict[str, int] = {}
        #: Chunk sizes of every generation run so far, for claims.json (the plugin drains it per test).
        self.chunk_log: list[list[int]] = []
        #: U-Net evaluations and images generated so far, by shape (cache hits excluded): the run's clock reads it.
        self.tally = Tally()
        #: sampler_claims.progress.Progress, or None: told of every step.
        self.progress = progress
        # diffusers' own VAE slicing: one image through the decoder at a time, whatever the batch.
        pipe.vae.enable_slicing()
        time_embedding_once_per_call(pipe.unet)
        #: The U-Net in channels_last memory format (an explicit setting: the images may change in the last bits).
        self.channels_last = channels_last
        if channels_last:
            pipe.unet.to(memory_format=torch.channels_last)
        #: torch.compile of the U-Net's forward (--compile): every lane's pipeline shares the compiled module.
        self.compiled = compile
        if compile:
            compile_unet(pipe.unet)
        #: The stock scheduler config, captured before any swap: every scheduler is made from it.
        self.stock_config = pipe.scheduler.config
        self._cache: dict[tuple[str, Request], Generation] = {}
        #: Uncached generations kept for later cached requests (keep): exact hits only, never a longer roster's
        #: first seeds (a single timed seed would otherwise start a roster that shares its prompt and first seed).
        self._kept: dict[tuple[str, Request], Generation] = {}
        #: A hit asked for by another spelling of its request, as returned: one object per spelling, so that what is
        #: keyed by a generation's identity (the quality scores) is computed once.
        self._aliases: dict[Request, Generation] = {}
        self.stats = {"hits": 0, "misses": 0, "uncached": 0, "extended": 0}
        #: Decodes of a generation's captured latents or x0 previews (decode_captured), by the generation's identity
        #: and what was captured: a roster's trajectory is read by several claims (final-sigma-zero's noise control,
        #: coarse-to-fine), and decoding it is a few seconds each time. At most DECODED_CACHE_BYTES in all.
        self._decoded: dict[tuple[int, str], tuple[Generation, np.ndarray]] = {}
        self._decoded_bytes = 0
        #: Pipelines of the CPU lanes after the first (which is `pipe`): the same modules, own tokenizers and
        #: schedulers.
        self._lane_pipes: list[StableDiffusionPipeline] = []
        #: U-Net evaluations made (images x calls, CFG counted: the plan's unit) per ledger key: the claim whose test
        #: is running (set by the plugin), so that claims.json can show each claim's planned against made.
        self.ledger: dict[str, int] = {}
        self.ledger_key: str | None = None
        #: What each ledger key asked the pipeline for: (request label, images), one entry per generation run.
        self.requested: dict[str, list[tuple[str, int]]] = {}

    # ------------------------------------------------------------------ inputs
    @property
    def latent_shape(self) -> tuple[int, int, int]:
        c = int(self.pipe.unet.config.in_channels)
        s = self.size // int(self.pipe.vae_scale_factor)
        return c, s, s

    def initial_latents(self, seed: int, batch: int) -> torch.Tensor:
        gen = torch.Generator("cpu").manual_seed(int(seed))
        return randn_tensor((batch, *self.latent_shape), generator=gen, device=torch.device("cpu"),
                            dtype=torch.float32)

    # ------------------------------------------------------------------ running
    def generate(
        self,
        request: Request,
        *,
        cached: bool = True,
        generators: list[torch.Generator] | None = None,
        callback: Callable[[Any, int, Any, dict], dict] | None = None,
    ) -> Generation:
        """Run (or fetch) one batched generation. Explicit generators or callbacks bypass the cache.

        A request whose first seeds (and prompts) are a cached request's reuses that generation and runs only
        the seeds after it, joined as chunks are: a claim on a longer roster (registry.DDPM_SEEDS) shares the
        shorter roster's images instead of computing them again."""
        bypass = not cached or generators is not None or callback is not None
        key = self.cache_key(request)
        if not bypass and (key in self._cache or key in self._kept):
            self.stats["hits"] += 1
            hit = self._cache[key] if key in self._cache else self._kept[key]
            if hit.request == request:
                return hit
            return self._aliases.setdefault(request, replace(hit, request=request))
        prefix = None if bypass else self._cached_prefix(request)
        if prefix is not None:
            k = len(prefix.request.seeds)
            rest = self.generate(replace(request, seeds=request.seeds[k:], prompt=_tail(request.prompt, k)))
            self.stats["extended"] += 1
            result = join(request, [prefix, rest], prefix.scheduler_config, prefix.timesteps)
            self._cache[key] = result
            return result
        result = self._run(request, generators=generators, callback=callback)
        if self.ledger_key is not None:
            self.ledger[self.ledger_key] = self.ledger.get(self.ledger_key, 0) + sum(result.unet_batch_sizes)
            self.requested.setdefault(self.ledger_key, []).append((request.label, len(request.seeds)))
        if bypass:
            self.stats["uncached"] += 1
        else:
            self.stats["misses"] += 1
            self._cache[key] = result
        return result

    def cache_key(self, request: Request) -> tuple[str, Request]:
        """What the cache keys a request by: the model and the request with its scheduler in canonical form
        (schedulers.canonical: an override the stock config already gives is dropped), so a claim that spells out
        a default shares the stock run another claim makes."""
        return self.model_key, replace(request, scheduler=canonical(request.scheduler, self.stock_config))

    def keep(self, generation: Generation) -> None:
        """Keep a generation made uncached (a timed one) for the cached requests that ask for it later: the timing
        rounds make the single-seed DDPM@1000 and DDIM@50 images that lesson-code-runs and cfg-two-passes show,
        and a timed call is the same request on the same code path. The first one kept stays. A kept generation
        serves its own request only, never as the first seeds of a longer one (_cached_prefix reads the cache)."""
        key = self.cache_key(generation.request)
        if key not in self._cache and key not in self._kept:
            self._kept[key] = generation

    def _cached_prefix(self, request: Request) -> Generation | None:
        """The cached generation with the most seeds whose request is this one's first seeds and prompts, same in
        everything else. None where z_T comes from one generator for the whole batch (latents_seed): there a
        shorter batch draws other latents."""
        if request.latents_seed is not None:
            return None
        request = self.cache_key(request)[1]
        best = None
        for (model, req), gen in self._cache.items():
            k = len(req.seeds)
            if (model == self.model_key and k < len(request.seeds) and req.seeds == request.seeds[:k]
                    and req.prompts == request.prompts[:k]
                    and replace(req, seeds=request.seeds, prompt=request.prompt) == request
                    and (best is None or k > len(best.request.seeds))):
                best = gen
        return best

    def _run(self, req: Request, *, generators: list[torch.Generator] | None,
             callback: Callable[[Any, int, Any, dict], dict] | None) -> Generation:
        pipe = self.pipe
        scheduler, used_config = make_scheduler(req.scheduler, self.stock_config)
        stock = pipe.scheduler
        pipe.scheduler = scheduler
        try:
            return self._sample(req, scheduler, used_config, generators, callback)
        finally:
            pipe.scheduler = stock  # the pipeline always holds its stock scheduler between runs

    def _sample(self, req: Request, scheduler: Any, used_config: dict[str, Any],
                generators: list[torch.Generator] | None,
                callback: Callable[[Any, int, Any, dict], dict] | None) -> Generation:
        """The request in chunks of seeds, joined as if it had been one batch.

        A callback, or explicit generators other than one per seed, run as one batch: a callback that reads the
        whole batch, or a shared generator's stream, would change if the seeds were split. One explicit generator
        per seed splits as the engine's own do."""
        n = len(req.seeds)
        shape = self.shape_key(req)
        whole = callback is not None or (generators is not None and len(generators) != n)
        z_t = None
        if req.latents_seed is not None:  # one generator for the whole batch: draw it whole, then slice
            z_t = self.initial_latents(req.latents_seed, n)
        parts: list[Generation] = []
        progress = self.progress.begin(req, self.model_key) if self.progress is not None else None

        def run(start: int, count: int, pipe: Any = None, stop: threading.Event | None = None) -> Generation:
            gens = (generators[start:start + count] if generators is not None
                    else cpu_generators(req.seeds[start:start + count]))
            lat = z_t[start:start + count] if z_t is not None else None
            return self._sample_chunk(req, scheduler, start, count, gens, lat, callback, progress, pipe=pipe,
                                      stop=stop)

        try:
            if self.device == "cpu" and self.memory is None:
                try:
                    parts.extend(self._in_lanes(n, run, whole))
                except Exception as exc:  # out of memory: one lane, chunks halved until they fit (or a usage error)
                    if whole or not is_oom(exc):
                        raise
                    parts.clear()
                    with pinned(1):
                        run_in_chunks(n, shape, self.fits, self.memory, self.max_batch, run, parts, self.device)
            elif whole:
                parts.append(run(0, n))
            else:
                run_in_chunks(n, shape, self.fits, self.memory, self.max_batch, run, parts, self.device)
        except BaseException as exc:
            if progress is not None:
                progress.abort(exc)
            raise
        result = join(req, parts, used_config, [int(t) for t in scheduler.timesteps])
        self.chunk_log.append(result.chunks)
        self.tally.add(n, sum(result.unet_batch_sizes), guided=req.guidance > 1)
        if progress is not None:
            progress.end(result)
        if self.check:
            guard(result.images if result.images is not None else np.zeros((0, 1, 1, 3), np.uint8),
                  result.latents, f"{req.describe()} on {self.model_key}")
        return result

    def shape_key(self, req: Request) -> str:
        """What decides a generation's memory per image: the size, CFG (two U-Net samples per image),
        decoding, and captures kept on the device. Steps and the scheduler do not."""
        cfg = "cfg" if req.guidance > 1 else "no-cfg"
        return f"{self.size}px {cfg} {req.output}{' capture' if req.capture else ''}"

    def call_pipe(self, pipe: Any = None, **kwargs: Any) -> Any:
        """The one pipeline call, on `pipe` (a CPU lane's) or the engine's (a seam: tests put a fake out-of-memory
        limit here)."""
        return (pipe if pipe is not None else self.pipe)(**kwargs)

    def _in_lanes(self, n: int, run: Callable[..., Generation], whole: bool = False) -> list[Generation]:
        """Seeds 0..n-1 on the CPU: in chunks of --max-batch, else in one share per torch thread (one chunk when
        `whole`), every pipeline call on one thread; the chunks run at once, one lane per thread, each lane on its
        own pipeline.

        Overlapping chunks each get their share (by seeds) of the whole section's wall and CPU time, since their
        own clocks overlap. If one lane fails or the run is interrupted, the others stop at their next step."""
        threads = torch.get_num_threads()
        chunks = lane_chunks(n, threads, self.max_batch or 0, whole)
        lanes = min(threads, len(chunks))
        with pinned(1):  # every pipeline call on one thread; the lanes set their own
            if lanes == 1:
                return [run(start, count) for start, count in chunks]
            while len(self._lane_pipes) < lanes - 1:
                self._lane_pipes.append(self._lane_pipe())
            free: queue.SimpleQueue[Any] = queue.SimpleQueue()
            for pipe in (self.pipe, *self._lane_pipes[:lanes - 1]):
                free.put(pipe)
            stop = threading.Event()

            def lane(start: int, count: int) -> Generation:
                torch.set_num_threads(1)
                pipe = free.get()
                try:
                    return run(start, count, pipe, stop)
                finally:
                    free.put(pipe)

            wall, cpu = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(max_workers=lanes, thread_name_prefix="sampler-claims-lane") as pool:
                futures = [pool.submit(lane, start, count) for start, count in chunks]
                try:
                    wait(futures, return_when=FIRST_EXCEPTION)
                except BaseException:  # interrupted: the lanes stop at their next step
                    stop.set()
                    raise
                if any(f.done() and f.exception() is not None for f in futures):
                    stop.set()
            errors = [e for e in (f.exception() for f in futures) if e is not None]
            if errors:  # the lane's own error, not the others' LaneStopped
                raise next((e for e in errors if not isinstance(e, LaneStopped)), errors[0])
            parts = [f.result() for f in futures]
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            for part, (_, count) in zip(parts, chunks):
                part.seconds = wall * count / n
                part.extra["cpu_seconds"] = cpu * count / n
            return parts

    def _lane_pipe(self) -> StableDiffusionPipeline:
        """A pipeline for one more CPU lane: the engine's modules, reused as diffusers documents it (from_pipe would
        also cast them, with a warning), but its own tokenizer and scheduler.

        A fast (Rust-backed) tokenizer keeps its padding setting between calls, and the pipeline tokenizes each
        prompt twice with different padding ("max_length", then "longest" to warn of truncation): two lanes on one
        tokenizer sometimes encode a prompt with the other lane's padding, a shorter text embedding and so another
        image (measured: 2 of 300 two-lane generations of the random pipeline differed). The scheduler is a copy
        because the pipeline's constructor may rewrite a scheduler's config (steps_offset, clip_sample), and while
        lanes are made the engine's pipeline holds the running request's scheduler; each chunk sets its own anyway."""
        parts = dict(self.pipe.components)
        parts["tokenizer"] = copy.deepcopy(self.pipe.tokenizer)
        parts["scheduler"] = copy.deepcopy(self.pipe.scheduler)
        pipe = type(self.pipe)(**parts, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _sample_chunk(self, req: Request, scheduler: Any, start: int, count: int, gens: list[torch.Generator],
                      latents: torch.Tensor | None, callback: Callable[[Any, int, Any, dict], dict] | None,
                      progress: Any, *, pipe: Any = None, stop: threading.Event | None = None) -> Generation:
        pipe = pipe if pipe is not None else self.pipe
        # A multistep scheduler keeps state across steps: every chunk starts from a fresh copy.
        scheduler = type(scheduler).from_config(scheduler.config) if start else scheduler
        step_fn = scheduler.step
        pipe.scheduler = scheduler
        if latents is not None:
            latents = latents.to(self.device, dtype=pipe.unet.dtype)
        prompts = req.prompts[start:start + count]
        steps_seen: list[torch.Tensor] = []
        x0s: list[torch.Tensor] = []
        final: dict[str, torch.Tensor] = {}
        total = [0]

        if req.capture:
            original_step = step_fn

            # wraps: the pipeline reads step's signature to decide whether to pass `generator` and `eta`;
            # a bare (*args, **kwargs) wrapper would make DDPM draw from the global RNG and DDIM drop eta.
            @functools.wraps(original_step)
            def step_with_preview(*args: Any, **kwargs: Any) -> Any:
                out = original_step(*args, **kwargs)
                preview = out[1] if isinstance(out, tuple) and len(out) > 1 else getattr(
                    out, "pred_original_sample", None)
                if isinstance(preview, torch.Tensor):
                    x0s.append(preview.detach().float().cpu().clone())
                return out

            scheduler.step = step_with_preview  # type: ignore[method-assign]

        def on_step_end(p: Any, i: int, t: Any, kwargs: dict) -> dict:
            if stop is not None and stop.is_set():
                raise LaneStopped(f"{req.label}: stopped at step {i + 1} because another lane stopped")
            total[0] += 1
            lat = kwargs["latents"]
            if req.capture:
                steps_seen.append(lat.detach().float().cpu().clone())
            final["latents"] = lat
            if progress is not None:
                progress.step(start, count, i + 1, p.num_timesteps if hasattr(p, "num_timesteps") else None)
            if callback is not None:
                return callback(p, i, t, kwargs)
            return {}

        try:
            with count_unet_calls(pipe.unet, this_thread=True) as calls:
                sync = self.device.startswith("cuda")
                if sync:
                    torch.cuda.synchronize()
                if self.memory is not None:
                    self.memory.reset_peak()
                start_t, cpu_start = time.perf_counter(), time.process_time()
                out = self.call_pipe(
                    pipe=pipe,
                    prompt=prompts,
                    num_inference_steps=req.steps,
                    guidance_scale=req.guidance,
                    eta=req.eta,
                    generator=gens,
                    latents=latents,
                    height=self.size,
                    width=self.size,
                    output_type="latent" if req.output == "latent" else "np",
                    callback_on_step_end=on_step_end,
                )
                if sync:
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start_t
                cpu_seconds = time.process_time() - cpu_start
        finally:
            if req.capture:
                scheduler.step = step_fn  # type: ignore[method-assign]
        peak = self.memory.peak() if self.memory is not None else None

        final_latents = final.get("latents")
        if req.output == "latent":
            final_latents = out.images
            images = None
        else:
            images = to_uint8(np.asarray(out.images))
        final_latents = final_latents.detach().float().cpu() if final_latents is not None else torch.empty(0)
        return Generation(
            request=req, images=images, latents=final_latents, unet_batch_sizes=calls.batch_sizes,
            seconds=seconds, scheduler_config={}, timesteps=[],
            intermediates=steps_seen if req.capture else None,
            x0_previews=x0s if req.capture else None,
            extra={"callbacks": total[0], "peak_bytes": peak, "cpu_seconds": cpu_seconds, "chunks": [count]},
        )

    def decode_captured(self, generation: Generation, what: str = "steps") -> np.ndarray:
        """[steps, batch, H, W, 3] uint8 decodes of a capture: the latents after each step ('steps') or the x0
        previews ('x0'), decoded once per generation (read-only: the array is shared)."""
        key = (id(generation), what)
        if key not in self._decoded:
            src = generation.intermediates if what == "steps" else generation.x0_previews
            if not src:
                raise ValueError(f"{generation.request.label}: nothing captured for {what!r}")
            flat = self.decode(torch.cat(src))
            arr = flat.reshape(len(src), src[0].shape[0], *flat.shape[1:])
            arr.flags.writeable = False
            if self._decoded_bytes + arr.nbytes > DECODED_CACHE_BYTES:
                return arr  # SD 1.5's decodes are ~50x their latents: past the budget, decode per use as before
            self._decoded_bytes += arr.nbytes
            self._decoded[key] = (generation, arr)  # the generation is kept so that its id is not reused
        return self._decoded[key][1]

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Decode latents (e.g. captured intermediates) to uint8 images with the pipeline's VAE."""
        pipe = self.pipe
        with torch.no_grad():
            lat = latents.to(self.device, dtype=pipe.vae.dtype) / pipe.vae.config.scaling_factor
            image = pipe.vae.decode(lat, return_dict=False)[0]
        image = pipe.image_processor.postprocess(image, output_type="np")
        return to_uint8(np.asarray(image))


class LaneStopped(RuntimeError):
    """A CPU lane stopped early because another lane of the same generation failed or the run was interrupted."""


def _tail(prompt: str | tuple[str, ...], k: int) -> str | tuple[str, ...]:
    """The prompt of a request's seeds from the k-th on."""
    return prompt if isinstance(prompt, str) else prompt[k:]


def join(req: Request, parts: list[Generation], used_config: dict[str, Any], timesteps: list[int]) -> Generation:
    """Chunks joined into the generation one batch would have given: images, latents and captures concatenated
    along the batch, U-Net batch sizes summed call by call (each chunk makes the same calls), times summed."""
    if len(parts) == 1:
        g = parts[0]
        g.scheduler_config, g.timesteps = used_config, timesteps
        g.extra["peak_gpu_bytes"] = g.extra.pop("peak_bytes")
        return g

    def cat(xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs) if xs[0].numel() else xs[0]

    images = None if parts[0].images is None else np.concatenate([p.images for p in parts])  # type: ignore[misc]
    captures = None
    x0s = None
    if parts[0].intermediates is not None:
        captures = [torch.cat(step) for step in zip(*(p.intermediates for p in parts))]  # type: ignore[misc]
        x0s = [torch.cat(step) for step in zip(*(p.x0_previews for p in parts))]  # type: ignore[misc]
    batch_sizes = [sum(b) for b in zip(*(p.unet_batch_sizes for p in parts))]
    peaks = [p.extra.get("peak_bytes", p.extra.get("peak_gpu_bytes")) for p in parts]
    peaks = [b for b in peaks if b is not None]
    return Generation(
        request=req, images=images, latents=cat([p.latents for p in parts]), unet_batch_sizes=batch_sizes,
        seconds=sum(p.seconds for p in parts), scheduler_config=used_config, timesteps=timesteps,
        intermediates=captures, x0_previews=x0s,
        extra={"callbacks": parts[0].extra["callbacks"], "peak_gpu_bytes": max(peaks) if peaks else None,
               "cpu_seconds": sum(p.cpu_seconds for p in parts), "chunks": [c for p in parts for c in p.chunks]},
    )
