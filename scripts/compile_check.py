"""Eager against channels_last and torch.compile on the run's shapes, through the engine (CPU lanes included).

    python scripts/compile_check.py --model tiny --seeds 64 --steps 20 --repeats 3
    python scripts/compile_check.py --model sd15-random --device cuda --dtype float16 --size 512 --seeds 4

For each variant (eager, channels_last, compile, compile+channels_last; --variants picks) a pipeline of its own:
the first call of each shape (the roster in lanes, one seed with guidance, one seed without) is timed on its own
(with --compile it pays the compilation: `compile_s` is that call less the variant's steady time), then the
variants' steady calls run interleaved, A B C A B C ..., `--repeats` times, so that a neighbour's load falls on
all of them alike. Prints one JSON object: per variant and shape the median and the spread of the repeats, the
compile seconds per shape, and the largest difference of the final latents from eager.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from sampler_claims import options  # noqa: E402
from sampler_claims.engine import Engine, Request  # noqa: E402
from sampler_claims.models import load  # noqa: E402
from sampler_claims.schedulers import SchedulerSpec  # noqa: E402
from sampler_claims.threads import generation_threads  # noqa: E402

VARIANTS = {"eager": {}, "channels_last": {"channels_last": True}, "compile": {"compile": True},
            "compile+channels_last": {"compile": True, "channels_last": True}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--seeds", type=int, default=64, help="the roster generation's seeds (lanes on the CPU)")
    ap.add_argument("--steps", type=int, default=20, help="DDPM steps of each timed generation")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--variants", default="eager,channels_last,compile")
    ap.add_argument("--shapes", default="roster,one,one-no-cfg")
    a = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = options.resolve(model=a.model, device=a.device, dtype=a.dtype, size=a.size, seeds=a.seeds,
                               rootdir=Path.cwd(), report="/tmp/compile_check/index.html")
    if settings.device == "cpu":
        torch.set_num_threads(generation_threads(a.threads))
    spec = SchedulerSpec.of("ddpm")
    prompt = "a red circle"
    shapes = {"roster": Request(spec, a.steps, tuple(range(a.seeds)), prompt),
              "one": Request(spec, a.steps, (0,), prompt),
              "one-no-cfg": Request(spec, a.steps, (0,), prompt, guidance=1.0)}
    shapes = {k: v for k, v in shapes.items() if k in a.shapes.split(",")}
    engines, first, lat = {}, {}, {}
    for name in a.variants.split(","):
        model = load(settings)
        t = time.perf_counter()
        engines[name] = Engine(model.pipe, model_key=name, size=model.size, device=settings.device,
                               **VARIANTS[name])
        first[name] = {}
        for shape, req in shapes.items():
            t = time.perf_counter()
            g = engines[name].generate(req, cached=False)
            first[name][shape] = time.perf_counter() - t
            lat[(name, shape)] = g.latents
        print(f"{name}: first calls {first[name]}", file=sys.stderr, flush=True)
    times: dict[str, dict[str, list[float]]] = {n: {s: [] for s in shapes} for n in engines}
    for r in range(a.repeats):
        order = list(engines)[r % len(engines):] + list(engines)[:r % len(engines)]
        for shape, req in shapes.items():
            for name in order:
                t = time.perf_counter()
                engines[name].generate(req, cached=False)
                times[name][shape].append(time.perf_counter() - t)
        print(f"repeat {r + 1}: " + json.dumps({n: {s: round(v[-1], 3) for s, v in d.items()}
                                                 for n, d in times.items()}), file=sys.stderr, flush=True)
    out: dict = {"model": settings.model_kind, "device": settings.device, "dtype": settings.dtype_name,
                 "size": engines[next(iter(engines))].size, "seeds": a.seeds, "steps": a.steps,
                 "threads": torch.get_num_threads(), "repeats": a.repeats, "torch": torch.__version__,
                 "variants": {}}
    for name in engines:
        v: dict = {}
        for shape, req in shapes.items():
            ts = times[name][shape]
            med = statistics.median(ts)
            evals = len(req.seeds) * a.steps * (2 if req.guidance > 1 else 1)
            v[shape] = {"median_s": round(med, 4), "min_s": round(min(ts), 4), "max_s": round(max(ts), 4),
                        "ms_per_eval": round(med / evals * 1e3, 4),
                        "first_call_s": round(first[name][shape], 3),
                        "compile_s": round(max(first[name][shape] - med, 0.0), 2) if "compile" in name else None,
                        "speedup_vs_eager": (round(statistics.median(times["eager"][shape]) / med, 3)
                                             if "eager" in times else None),
                        "max_abs_diff_vs_eager": (float((lat[(name, shape)] - lat[("eager", shape)]).abs().max())
                                                  if ("eager", shape) in lat else None)}
        out["variants"][name] = v
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
