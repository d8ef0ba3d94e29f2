#!/usr/bin/env python
"""Measure the embedded tiny model's quality table with plain diffusers.

Why: the model card's numbers must come from the same public API the lesson uses
(StableDiffusionPipeline, scheduler swaps via XScheduler.from_config(pipe.scheduler.config, ...),
guidance 7.5, one CPU generator per image) and be judged by the independent checker, never by the
model itself.

For each sampler configuration over the same prompt-seed pairs it reports
- prompt adherence: checker match rate and the accuracy of each attribute the caption names;
- SSIM (skimage, data_range=255, channel_axis=-1) to the converged image of the same pair
  (DPMSolverMultistep at 200 steps), averaged;
each match rate with its Wilson 95% score interval over the n pairs, and each mean SSIM with a t 95%
interval of the mean over the pairs (pairs are independent draws; the images within a pair are not),
both from sampler_claims.verdict, the suite's own decision layer; with --before, the paired change of
each match rate against an earlier quality.json of the same pairs;
and separately the wall time of one DDPM 1000-step and one DPMSolverMultistep 20-step CFG image, and
the U-Net forward time at batch 2 (one CFG step) and batch 16.

Example:  python scripts/evaluate_tiny.py --model fixtures/tiny-shapes --n 64
"""
from __future__ import annotations

import argparse
import importlib
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

from sampler_claims import verdict  # noqa: E402
from sampler_claims.tinyshapes import checker, dataset  # noqa: E402  (replaced by --world in main)

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
    # The DDIM paper's ordering: eta=1 (DDPM-like fresh noise) trails eta=0 by a wide gap at 10 steps,
    # a gap that closes by 50. "eta" is a pipeline argument, not a scheduler setting.
    "DDIM@10 eta=1": (DDIMScheduler, {"eta": 1.0}, 10),
    "DDIM@50 eta=1": (DDIMScheduler, {"eta": 1.0}, 50),
}
#: Pipeline-call arguments that CONFIGS carry among their scheduler overrides.
CALL_ARGS = ("eta",)
#: Guidance scales of the convergence study: the lesson's 7.5, and below and above it.
STUDY_GUIDANCE = (1.0, 3.0, 7.5, 12.0)
REFERENCE = ("DPMSolverMultistep@200", (DPMSolverMultistepScheduler, {}, 200))


def load(model: Path) -> StableDiffusionPipeline:
    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, spec: tuple[type, dict, int], prompts: list[str], seeds: list[int], batch: int,
             guidance: float | None = None, timesteps: list[int] | None = None) -> np.ndarray:
    """uint8 images, one CPU generator per image, in batches of `batch` prompts; at the lesson's guidance
    unless told otherwise, and on a custom timestep grid in place of the spec's step count if given."""
    cls, overrides, steps = spec
    call = {k: v for k, v in overrides.items() if k in CALL_ARGS}
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **{k: v for k, v in overrides.items() if k not in call})
    kw = {"timesteps": timesteps} if timesteps is not None else {"num_inference_steps": steps}
    kw.update(call)
    out = []
    for i in range(0, len(prompts), batch):
        gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[i : i + batch]]
        imgs = pipe(prompts[i : i + batch], guidance_scale=GUIDANCE if guidance is None else guidance,
                    generator=gens, output_type="np", **kw).images
        out.append(np.clip(np.round(imgs * 255), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def ssims(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return np.array([structural_similarity(a, b, data_range=255, channel_axis=-1)
                     for a, b in zip(images, reference)])


def adherence_row(adh: dict, n: int) -> dict:
    row = {k: v for k, v in adh.items() if k == "match_rate" or k.endswith("_acc")}
    row["mean_score"] = round(float(np.mean([sc.score for sc in adh["scores"]])), 4)
    row["per_pair_score"] = [round(float(sc.score), 4) for sc in adh["scores"]]
    k = int(round(adh["match_rate"] * n))
    row["matches"] = k
    iv = verdict.wilson(k, n)
    row["match_wilson95"] = [iv.low, iv.high]
    row["per_pair_match"] = [int(m) for m in adh["per_image"]]  # for paired comparisons between models
    return row


def paired_changes(before: dict, after: dict) -> dict:
    """Change of each match rate, after minus before, paired by prompt-seed pair (t interval).

    Pairs are matched by index, so both reports must use the same --seed; a shorter report's pairs are
    the longer one's first ones (dataset.sample and the seeds are prefix-stable)."""
    if before.get("prompt_seed") != after.get("prompt_seed"):
        raise SystemExit(f"--before used prompt seed {before.get('prompt_seed')}, this run {after.get('prompt_seed')}: "
                         "rerun with the same --seed so the pairs match")
    out = {}
    rows_b = {**before["configs"], "reference": before["reference"]}
    rows_a = {**after["configs"], "reference": after["reference"]}
    for name, ra in rows_a.items():
        if name not in rows_b:
            continue
        k = min(len(ra["per_pair_match"]), len(rows_b[name]["per_pair_match"]))
        iv = verdict.paired(ra["per_pair_match"][:k], rows_b[name]["per_pair_match"][:k])
        out[name] = {"change": round(iv.mean, 4), "ci95": [round(iv.low, 4), round(iv.high, 4)], "n": k}
    return out


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


def convergence_study(pipe, prompts: list[str], seeds: list[int], batch: int) -> dict:
    """Where DPM-Solver@20's distance to its converged image comes from (the card's convergence bar: SSIM >= 0.95 at 20 steps).

    Three readings, each as mean SSIM to DPM-Solver@200 of the same pair and the share of pairs >= 0.95:
    - *steps x guidance*: the knee at each of STUDY_GUIDANCE. If 20 steps converge without strong guidance,
      the solver's error comes from the guided ODE, not from the model's unguided score;
    - *where on the trajectory*: the stock 20-step grid (999, 949, ..., 49) with one region of t replaced
      by the reference's own fine grid (every ~5). The region whose refinement recovers the converged
      image is where the 20-step solver errs;
    - *how far guidance throws the prediction at t=999*: RMS norm of the guided x0 prediction (guidance
      7.5) against the RMS norm of the data's latents, and of cond - uncond. A guided prediction far off
      the data's scale is what a coarse first step has to integrate.
    """
    dpm = REFERENCE[1]  # (stock DPMSolverMultistep; its step count is replaced below)
    fine = [int(t) for t in np.round(np.linspace(999, 0, 201))[:-1]]  # = DPM-Solver@200's linspace grid
    study: dict = {"steps_by_guidance": {}, "refined_regions": {}}
    refs = {}
    for g in STUDY_GUIDANCE:
        ref = refs[g] = generate(pipe, dpm, prompts, seeds, batch, g, timesteps=fine)
        row = {}
        for steps in (10, 15, 20, 25, 30, 50):
            s = ssims(generate(pipe, (*dpm[:2], steps), prompts, seeds, batch, g), ref)
            row[f"@{steps}"] = {"mean_ssim": round(float(s.mean()), 4), "share_ge_0.95": round(float(np.mean(s >= 0.95)), 3)}
        study["steps_by_guidance"][f"guidance {g:g}"] = row
        print("convergence", g, json.dumps(row), flush=True)
    coarse = [999 - 50 * k for k in range(20)]
    for name, (lo, hi) in {"none (stock 20 steps)": (2000, 2000), "t 700-999 refined": (700, 999),
                           "t 300-700 refined": (300, 700), "t 0-300 refined": (0, 300)}.items():
        grid = sorted({t for t in coarse if not lo <= t <= hi} | {t for t in fine if lo <= t <= hi}, reverse=True)
        # at the pipeline's default guidance (7.5), against the converged image at that guidance
        s = ssims(generate(pipe, dpm, prompts, seeds, batch, timesteps=grid), refs[7.5])
        study["refined_regions"][name] = {"steps": len(grid), "mean_ssim": round(float(s.mean()), 4),
                                          "share_ge_0.95": round(float(np.mean(s >= 0.95)), 3)}
        print("refined", name, json.dumps(study["refined_regions"][name]), flush=True)
    with torch.inference_mode():
        cond, uncond = pipe.encode_prompt(prompts[:batch], "cpu", 1, True, [""] * len(prompts[:batch]))
        z = torch.stack([torch.randn((4, 16, 16), generator=torch.Generator("cpu").manual_seed(s)) for s in seeds[:batch]])
        a = pipe.scheduler.alphas_cumprod[999]
        eu, ec = pipe.unet(torch.cat([z, z]), 999, encoder_hidden_states=torch.cat([uncond, cond])).sample.chunk(2)
        x0u, x0c = (z - (1 - a).sqrt() * eu) / a.sqrt(), (z - (1 - a).sqrt() * ec) / a.sqrt()
        x0g = x0u + GUIDANCE * (x0c - x0u)
        data = dataset.sample(123, 512).images
        x = torch.tensor(data).permute(0, 3, 1, 2).float() / 127.5 - 1
        lat = pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor
        rms = lambda v: float(v.pow(2).mean().sqrt())
        study["x0_at_t999_rms"] = {"data_latents": round(rms(lat), 3), "uncond": round(rms(x0u), 3),
                                   "cond": round(rms(x0c), 3), "cond_minus_uncond": round(rms(x0c - x0u), 3),
                                   f"guided_{GUIDANCE:g}": round(rms(x0g), 3)}
    print("x0 at t=999", json.dumps(study["x0_at_t999_rms"]), flush=True)
    return study


def markdown(report: dict) -> str:
    n = report["n"]
    attrs = [k for k in report["reference"] if k.endswith("_acc")]
    lines = ["| sampler | match (Wilson 95%) | n | " + " | ".join(a[:-4] for a in attrs)
             + " | mean score | SSIM to converged (95% CI) | pairs with SSIM >= 0.95 |",
             "|---|---|---|" + "---|" * len(attrs) + "---|---|---|"]
    rows = dict(report["configs"])
    rows[report["reference"]["name"] + " (reference)"] = report["reference"]
    for name, r in rows.items():
        lo, hi = r["match_wilson95"]
        ssim = (f"{r['ssim_to_converged']:.3f} ({r['ssim_95'][0]:.3f}-{r['ssim_95'][1]:.3f})"
                if "ssim_95" in r else "1")
        share = f"{r['ssim_share_ge_0.95']:.0%}" if "ssim_share_ge_0.95" in r else "-"
        lines.append(f"| {name} | {r['match_rate']:.1%} ({lo:.1%}-{hi:.1%}) | {n} | "
                     + " | ".join(f"{r[a]:.1%}" for a in attrs)
                     + f" | {r.get('mean_score', float('nan')):.3f} | {ssim} | {share} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ROOT / "fixtures" / "tiny-shapes")
    p.add_argument("--world", default="sampler_claims.tinyshapes",
                   help="the package of the model's world (its dataset and checker modules)")
    p.add_argument("--n", type=int, default=64, help="prompt-seed pairs")
    p.add_argument("--seed", type=int, default=5000, help="prompts from dataset.sample(seed, n); seeds seed+i")
    p.add_argument("--batch", type=int, default=32, help="prompts per pipeline call")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="default: <model>/quality.json")
    p.add_argument("--no-timing", action="store_true", help="skip the timings (quick looks)")
    p.add_argument("--skip", nargs="*", default=[], help="config names to skip (quick looks)")
    p.add_argument("--only", nargs="*", default=None, help="run only these config names (quick looks)")
    p.add_argument("--before", type=Path, default=None, metavar="JSON",
                   help="an earlier model's quality.json over the same pairs: report paired changes against it")
    p.add_argument("--convergence-study", type=int, default=0, metavar="N",
                   help="also run convergence_study() on the first N pairs (0: off); it goes in the JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    global checker, dataset
    checker = importlib.import_module(args.world + ".checker")
    dataset = importlib.import_module(args.world + ".dataset")

    pipe = load(args.model)
    prompts = dataset.sample(args.seed, args.n).captions
    seeds = [args.seed + i for i in range(args.n)]
    report: dict = {"n": args.n, "world": args.world, "guidance": GUIDANCE, "threads": args.threads, "prompt_seed": args.seed,
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
        iv = verdict.t_interval(s)
        row["ssim_to_converged"], row["ssim_95"] = iv.mean, [iv.low, iv.high]
        row["per_pair_ssim"] = [round(float(x), 4) for x in s]
        row["ssim_share_ge_0.95"] = float(np.mean(s >= 0.95))
        row["seconds_for_all"] = round(time.perf_counter() - t0, 1)
        report["configs"][name] = row
        print(name, json.dumps({k: v for k, v in row.items() if not k.startswith("per_pair")}), flush=True)
    if args.before is not None:
        report["paired_change_vs_before"] = paired_changes(json.loads(args.before.read_text()), report)
        print("paired change vs", args.before, json.dumps(report["paired_change_vs_before"]), flush=True)
    if args.convergence_study:
        k = args.convergence_study
        report["convergence_study"] = {"n": k, **convergence_study(pipe, prompts[:k], seeds[:k], args.batch)}
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
