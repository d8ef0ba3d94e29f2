#!/usr/bin/env python
"""Measure the embedded tiny model's quality table with plain diffusers.

Why: the model card's numbers must come from the same public API the lesson uses
(StableDiffusionPipeline, scheduler swaps via XScheduler.from_config(pipe.scheduler.config, ...),
guidance 7.5, one CPU generator per image) and be judged by the independent checker, never by the
model itself.

For each sampler configuration over the same prompt-seed pairs it reports
- prompt adherence: checker match rate and shape / foreground / background accuracies;
- SSIM (skimage, data_range=255, channel_axis=-1) to the converged image of the same pair
  (DPMSolverMultistep at 200 steps), averaged;
each match rate with its Wilson 95% score interval over the n pairs, and each mean SSIM with a normal
95% interval of the mean over the pairs (pairs are independent draws; the images within a pair are not);
and separately the wall time of one DDPM 1000-step and one DPMSolverMultistep 20-step CFG image, and
the U-Net forward time at batch 2 (one CFG step) and batch 16.

Example:  python scripts/evaluate_tiny.py --model fixtures/tiny-shapes --n 64
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusers import (  # noqa: E402
    DDIMScheduler,
    DDPMScheduler,
    DPMSolverMultistepScheduler,
    StableDiffusionPipeline,
)
from skimage.metrics import structural_similarity  # noqa: E402

from sampler_claims.tinyshapes import checker, dataset  # noqa: E402

GUIDANCE = 7.5
#: name -> (scheduler class, from_config overrides, steps). DDPM at 1000 needs trailing spacing:
#: with SD 1.5's steps_offset=1 the stock "leading" spacing indexes past the schedule (diffusers #10003).
CONFIGS: dict[str, tuple[type, dict, int]] = {
    "DPMSolverMultistep@20": (DPMSolverMultistepScheduler, {}, 20),
    "DDIM@50": (DDIMScheduler, {}, 50),
    "DDPM@1000 (trailing)": (DDPMScheduler, {"timestep_spacing": "trailing"}, 1000),
    "DPMSolverMultistep@5": (DPMSolverMultistepScheduler, {}, 5),
    "DDPM@10": (DDPMScheduler, {}, 10),
    "DDIM@10": (DDIMScheduler, {}, 10),
}
REFERENCE = ("DPMSolverMultistep@200", (DPMSolverMultistepScheduler, {}, 200))


def load(model: Path) -> StableDiffusionPipeline:
    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, spec: tuple[type, dict, int], prompts: list[str], seeds: list[int], batch: int) -> np.ndarray:
    """uint8 images, one CPU generator per image, in batches of `batch` prompts."""
    cls, overrides, steps = spec
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **overrides)
    out = []
    for i in range(0, len(prompts), batch):
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[i : i + batch]]
        imgs = pipe(prompts[i : i + batch], num_inference_steps=steps, guidance_scale=GUIDANCE,
                    generator=gens, output_type="np").images
        out.append(np.clip(np.round(imgs * 255), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def ssims(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.array([structural_similarity(a, b, data_range=255, channel_axis=-1)
                     for a, b in zip(images, reference)])


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score 95% interval of a proportion k/n: honest near 0 and 1, where the normal one is not."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def mean_interval(values: np.ndarray, z: float = 1.959964) -> tuple[float, float, float]:
    """Mean and its normal 95% interval (n >= 30 pairs here, so the t correction is negligible)."""
    m = float(np.mean(values))
    half = z * float(np.std(values, ddof=1)) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return m, m - half, m + half


def adherence_row(adh: dict, n: int) -> dict:
    row = {k: adh[k] for k in ("match_rate", "shape_acc", "fg_acc", "bg_acc")}
    k = int(round(adh["match_rate"] * n))
    row["matches"] = k
    row["match_wilson95"] = list(wilson(k, n))
    row["per_pair_match"] = [int(m) for m in adh["per_image"]]  # for paired comparisons between models
    return row


def time_one(pipe, spec: tuple[type, dict, int], prompt: str, seed: int, repeats: int = 1) -> float:
    """Best-of-repeats wall time of one CFG image (after a warm-up call at 2 steps)."""
    cls, overrides, steps = spec
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **overrides)
    pipe(prompt, num_inference_steps=2, guidance_scale=GUIDANCE, generator=torch.Generator("cpu").manual_seed(seed))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        pipe(prompt, num_inference_steps=steps, guidance_scale=GUIDANCE,
             generator=torch.Generator("cpu").manual_seed(seed), output_type="np")
        best = min(best, time.perf_counter() - t0)
    return best


@torch.inference_mode()
def unet_forward_ms(unet, batch: int, reps: int = 50) -> float:
    """Median U-Net forward time at a given batch (2 = one classifier-free-guidance step)."""
    c = unet.config
    x = torch.randn(batch, c.in_channels, c.sample_size, c.sample_size)
    t = torch.full((batch,), 500)
    e = torch.randn(batch, 16, c.cross_attention_dim)
    for _ in range(5):
        unet(x, t, encoder_hidden_states=e)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        unet(x, t, encoder_hidden_states=e)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts) * 1e3)


def markdown(report: dict) -> str:
    n = report["n"]
    lines = ["| sampler | match (Wilson 95%) | n | shape | fg | bg | SSIM to converged (95% CI) |",
             "|---|---|---|---|---|---|---|"]
    rows = dict(report["configs"])
    rows[report["reference"]["name"] + " (reference)"] = report["reference"]
    for name, r in rows.items():
        lo, hi = r["match_wilson95"]
        ssim = (f"{r['ssim_to_converged']:.3f} ({r['ssim_95'][0]:.3f}-{r['ssim_95'][1]:.3f})"
                if "ssim_95" in r else "1")
        lines.append(f"| {name} | {r['match_rate']:.1%} ({lo:.1%}-{hi:.1%}) | {n} | {r['shape_acc']:.1%} | "
                     f"{r['fg_acc']:.1%} | {r['bg_acc']:.1%} | {ssim} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ROOT / "fixtures" / "tiny-shapes")
    p.add_argument("--n", type=int, default=64, help="prompt-seed pairs")
    p.add_argument("--seed", type=int, default=5000, help="prompts from dataset.sample(seed, n); seeds seed+i")
    p.add_argument("--batch", type=int, default=32, help="prompts per pipeline call")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="default: <model>/quality.json")
    p.add_argument("--no-timing", action="store_true", help="skip the timings (quick looks)")
    p.add_argument("--skip", nargs="*", default=[], help="config names to skip (quick looks)")
    p.add_argument("--only", nargs="*", default=None, help="run only these config names (quick looks)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    pipe = load(args.model)
    prompts = dataset.sample(args.seed, args.n).captions
    seeds = [args.seed + i for i in range(args.n)]
    report: dict = {"n": args.n, "guidance": GUIDANCE, "threads": args.threads, "prompt_seed": args.seed,
                    "configs": {}}
    t0 = time.perf_counter()
    ref = generate(pipe, REFERENCE[1], prompts, seeds, args.batch)
    ref_adh = checker.adherence(list(ref), prompts)
    report["reference"] = {"name": REFERENCE[0], **adherence_row(ref_adh, args.n)}
    print(f"reference {REFERENCE[0]}: match {ref_adh['match_rate']:.1%} ({time.perf_counter() - t0:.0f}s)", flush=True)
    for name, spec in CONFIGS.items():
        if name in args.skip or (args.only is not None and name not in args.only):
            continue
        t0 = time.perf_counter()
        imgs = generate(pipe, spec, prompts, seeds, args.batch)
        adh = checker.adherence(list(imgs), prompts)
        row = adherence_row(adh, args.n)
        s = ssims(imgs, ref)
        row["ssim_to_converged"], *ci = mean_interval(s)
        row["ssim_95"] = ci
        row["ssim_share_ge_0.95"] = float(np.mean(s >= 0.95))
        row["seconds_for_all"] = round(time.perf_counter() - t0, 1)
        report["configs"][name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k != "per_pair_match"}), flush=True)
    if args.no_timing:
        out = args.json or (args.model / "quality.json")
        out.write_text(json.dumps(report, indent=2) + "\n")
        print(markdown(report))
        return
    report["timing_s"] = {
        "DDPM@1000 (trailing), 1 image, CFG, best of 2": round(time_one(pipe, CONFIGS["DDPM@1000 (trailing)"], prompts[0], seeds[0], 2), 2),
        "DPMSolverMultistep@20, 1 image, CFG, best of 3": round(time_one(pipe, CONFIGS["DPMSolverMultistep@20"], prompts[0], seeds[0], 3), 3),
    }
    report["unet_forward_ms"] = {"batch2": round(unet_forward_ms(pipe.unet, 2), 2),
                                 "batch16": round(unet_forward_ms(pipe.unet, 16), 2)}
    out = args.json or (args.model / "quality.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print(json.dumps({"timing_s": report["timing_s"], "unet_forward_ms": report["unet_forward_ms"]}, indent=2))


if __name__ == "__main__":
    main()
