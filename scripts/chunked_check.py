"""The device check's chunked generation: SD 1.5's architecture (sd15-random) at 512x512, 32 seeds, one request
through the engine as a claims run makes it (measured chunk, VAE slicing), and what it cost, as JSON:
peak memory, the chunk the probe chose, and seconds per U-Net evaluation (images x calls, CFG counted).

    python scripts/chunked_check.py --device cuda --dtype float16 --seeds 32 --steps 20
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from sampler_claims import paths
from sampler_claims.engine import Engine, Request
from sampler_claims.models import _quiet, build_from_configs
from sampler_claims.options import DTYPES, torch_dtype
from sampler_claims.schedulers import DPM


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="float16", choices=list(DTYPES))
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--max-batch", type=int, default=None)
    a = ap.parse_args()
    pipe = _quiet(build_from_configs(paths.SD15_RANDOM).to(a.device, dtype=torch_dtype(a.dtype)))
    engine = Engine(pipe, model_key="sd15-random", size=a.size, device=a.device, check=False, max_batch=a.max_batch)
    cuda = a.device.startswith("cuda")
    engine.generate(Request(DPM, 2, (0,), "warm-up"), cached=False)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    req = Request(DPM, a.steps, tuple(range(a.seeds)), "a photograph of an astronaut riding a horse")
    start = time.perf_counter()
    g = engine.generate(req, cached=False)
    wall = time.perf_counter() - start
    evals = sum(g.unet_batch_sizes)
    out = {
        "device": torch.cuda.get_device_name(0) if cuda else a.device, "dtype": a.dtype, "size": a.size,
        "seeds": a.seeds, "steps": a.steps, "chunks": g.chunks, "measured_fit": engine.fits,
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "peak_above_weights_gib": round((torch.cuda.max_memory_allocated() - base) / 2**30, 2) if cuda else None,
        "total_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
        "unet_evaluations": evals, "seconds": round(wall, 2), "ms_per_unet_evaluation": round(1e3 * wall / evals, 3),
        "torch": torch.__version__,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
