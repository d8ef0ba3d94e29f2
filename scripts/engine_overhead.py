"""Engine overhead against a bare `pipe(...)` call with the same inputs, per denoising step.

Usage: python scripts/engine_overhead.py [--model tiny|sd15-random|PATH] [--device cpu|cuda] [--steps 50]
Prints one JSON line: per-step ms for the bare call and the engine, with and without CFG, their ratio,
and peak GPU memory. Both sides run the same scheduler, seeds, prompt and size, interleaved, best of N.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch

from sampler_claims import options
from sampler_claims.engine import Engine, Request, cpu_generators
from sampler_claims.models import load
from sampler_claims.schedulers import SchedulerSpec, make_scheduler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size", type=int, default=None)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = options.resolve(model=args.model, device=args.device, dtype=args.dtype, size=args.size)
    model = load(settings)
    pipe = model.pipe
    engine = Engine(pipe, model_key=settings.model_key, size=model.size, device=settings.device)
    spec = SchedulerSpec.of("ddim")
    prompt = "a red circle"
    cuda = settings.device.startswith("cuda")
    out: dict[str, object] = {"model": settings.model_kind, "device": settings.device, "dtype": settings.dtype_name,
                              "size": model.size, "steps": args.steps, "scheduler": spec.label}

    def bare(guidance: float) -> float:
        pipe.scheduler = make_scheduler(spec, engine.stock_config)[0]
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        pipe(prompt=[prompt], num_inference_steps=args.steps, guidance_scale=guidance,
             generator=cpu_generators([0]), height=model.size, width=model.size, output_type="np")
        if cuda:
            torch.cuda.synchronize()
        return time.perf_counter() - t

    def eng(guidance: float) -> float:
        g = engine.generate(Request(spec, args.steps, (0,), prompt, guidance=guidance), cached=False)
        if g.extra.get("peak_gpu_bytes"):
            out[f"peak_gpu_mib_g{guidance}"] = round(g.extra["peak_gpu_bytes"] / 2**20, 1)
        return g.seconds

    for guidance in (7.5, 1.0):
        bare(guidance), eng(guidance)  # warm-up
        b, e = [], []
        for _ in range(args.rounds):  # interleaved so drift hits both alike
            b.append(bare(guidance))
            e.append(eng(guidance))
        tag = "cfg" if guidance > 1 else "nocfg"
        out[f"bare_ms_per_step_{tag}"] = round(min(b) / args.steps * 1e3, 3)
        out[f"engine_ms_per_step_{tag}"] = round(min(e) / args.steps * 1e3, 3)
        out[f"engine_over_bare_{tag}"] = round(min(e) / min(b), 4)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
