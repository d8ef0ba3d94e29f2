"""The one generation engine every claim calls.

It batches seeds into one pipeline call with a list of CPU generators (image k is reproducible on its
own, diffusers #3158), counts U-Net calls through a hook, times the call, guards against NaN and blank
output, and caches results for the session keyed by every input, so that claims sharing a generation
compute it once. Timing runs pass `cached=False`.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from diffusers import StableDiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from .counters import count_unet_calls
from .metrics import guard
from .schedulers import SchedulerSpec, make_scheduler

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


def cpu_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per image, as diffusers' own tests use, for results that match across devices."""
    return [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """The pipeline's float [0, 1] output rounded to uint8 the way diffusers' numpy_to_pil does."""
    return (images * 255).round().astype(np.uint8)


class Engine:
    def __init__(self, pipe: StableDiffusionPipeline, *, model_key: str, size: int, device: str,
                 check: bool = True) -> None:
        self.pipe = pipe
        self.model_key = model_key
        self.size = size
        self.device = device
        self.check = check
        #: The stock scheduler config, captured before any swap: every scheduler is made from it.
        self.stock_config = pipe.scheduler.config
        self._cache: dict[tuple[str, Request], Generation] = {}
        self.stats = {"hits": 0, "misses": 0, "uncached": 0}

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
        """Run (or fetch) one batched generation. Explicit generators or callbacks bypass the cache."""
        bypass = not cached or generators is not None or callback is not None
        key = (self.model_key, request)
        if not bypass and key in self._cache:
            self.stats["hits"] += 1
            return self._cache[key]
        result = self._run(request, generators=generators, callback=callback)
        if bypass:
            self.stats["uncached"] += 1
        else:
            self.stats["misses"] += 1
            self._cache[key] = result
        return result

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
        pipe = self.pipe
        batch = len(req.seeds)
        gens = generators if generators is not None else cpu_generators(req.seeds)
        latents = None
        if req.latents_seed is not None:
            latents = self.initial_latents(req.latents_seed, batch).to(self.device, dtype=pipe.unet.dtype)

        steps_seen: list[torch.Tensor] = []
        x0s: list[torch.Tensor] = []
        final: dict[str, torch.Tensor] = {}
        total = [0]

        if req.capture:
            original_step = scheduler.step

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
            total[0] += 1
            lat = kwargs["latents"]
            if req.capture:
                steps_seen.append(lat.detach().float().cpu().clone())
            final["latents"] = lat
            if callback is not None:
                return callback(p, i, t, kwargs)
            return {}

        with count_unet_calls(pipe.unet) as calls:
            sync = self.device.startswith("cuda")
            if sync:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start, cpu_start = time.perf_counter(), time.process_time()
            out = pipe(
                prompt=req.prompts,
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
            seconds = time.perf_counter() - start
            cpu_seconds = time.process_time() - cpu_start
        peak = torch.cuda.max_memory_allocated() if sync else None

        final_latents = final.get("latents")
        if req.output == "latent":
            final_latents = out.images
            images = None
        else:
            images = to_uint8(np.asarray(out.images))
        final_latents = final_latents.detach().float().cpu() if final_latents is not None else torch.empty(0)
        result = Generation(
            request=req, images=images, latents=final_latents, unet_batch_sizes=calls.batch_sizes,
            seconds=seconds, scheduler_config=used_config,
            timesteps=[int(t) for t in scheduler.timesteps],
            intermediates=steps_seen if req.capture else None,
            x0_previews=x0s if req.capture else None,
            extra={"callbacks": total[0], "peak_gpu_bytes": peak, "cpu_seconds": cpu_seconds},
        )
        if self.check:
            guard(images if images is not None else np.zeros((0, 1, 1, 3), np.uint8), final_latents,
                  f"{req.describe()} on {self.model_key}")
        return result

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Decode latents (e.g. captured intermediates) to uint8 images with the pipeline's VAE."""
        pipe = self.pipe
        with torch.no_grad():
            lat = latents.to(self.device, dtype=pipe.vae.dtype) / pipe.vae.config.scaling_factor
            image = pipe.vae.decode(lat, return_dict=False)[0]
        image = pipe.image_processor.postprocess(image, output_type="np")
        return to_uint8(np.asarray(image))
