#!/usr/bin/env python
"""Train the embedded tiny text-to-image latent diffusion model (fixtures/tiny-shapes) on the CPU.

Why it exists: the sampler claims are about Stable Diffusion 1.5, which is far too big for a CPU test
suite. This model has SD 1.5's structure (CLIP text encoder -> cross-attention U-Net in a VAE latent
space, epsilon prediction under SD 1.5's exact noise schedule and scheduler config) at a size that
samples a 1000-step DDPM image in seconds, and it is *trained*, so samplers have real denoising to do.

Phases, all seeded:
1. generate the training images (sampler_claims.tinyshapes.dataset, seed --seed);
2. train the VAE (32x32x3 <-> 16x16x4) and set its scaling_factor to 1/std of the latents, as SD does;
   or, from a saved folder, fine-tune its decoder alone (--decoder-steps);
3. train the text encoder and U-Net jointly, with ~10% caption dropout to "" (encoded exactly as the
   pipeline encodes the unconditional prompt) so that classifier-free guidance works, and an EMA
   of both;
4. save a StableDiffusionPipeline folder (safetensors) and a training summary JSON;
5. a quick adherence check of the saved folder with DPMSolverMultistep at 20 steps.

Threads: on a shared 2-core machine PyTorch's OpenMP barriers at 2 threads stall on every op whenever
another process holds a core (measured: 10-20x slower than 1 thread), while on an idle machine 2
threads are ~2x faster. The default (--threads 0) measures and picks per phase as it goes; a fixed
--threads N gives bitwise-repeatable arithmetic. With the default, a run is seeded (data, init,
noise, batches) but the step count may depend on machine speed through --minutes; the summary
JSON records the steps actually taken.

The shipped fixture (version 3) took four stages: the first from scratch, the second and third resumed
with --init-from and --vae-steps 0, and the fourth a decoder-only fine-tune (--decoder-steps, --steps 0)
that keeps the latent space, and so the U-Net, as trained. fixtures/tiny-shapes/README.md lists the exact
commands. The first stage:
    python scripts/train_tiny.py --out <stage1> --seed 0 --threads 1 --steps 10000 --lr 1e-3 --warmup 200 \
        --ema-decay 0.999 --ema-constant --snr-gamma 2 --minutes 45 --reserve-seconds 90
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel  # noqa: E402
from diffusers.training_utils import EMAModel  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

from sampler_claims import paths  # noqa: E402
from sampler_claims.tinyshapes import dataset, vocab  # noqa: E402  (replaced by --world in main)

#: SD 1.5's stock scheduler config, as shipped in the repo (a verbatim copy of Stable Diffusion 1.5's published configs).
SD15_SCHEDULER = paths.SD15_RANDOM / "scheduler" / "scheduler_config.json"
TEXT_DIM = 64


# ------------------------------------------------------------------------------------------ models
def build_vae() -> AutoencoderKL:
    """2x downsampling (32x32x3 -> 16x16x4): enough compression for a latent model, little detail lost.

    32 channels at both levels and no mid-block attention: measured on the shared CPU, (32, 64) with
    attention cost ~3x more per step and converged no better per second on these simple images.
    """
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        mid_block_add_attention=False,
        sample_size=dataset.SIZE,
    )


def build_text_encoder() -> CLIPTextModel:
    """A 2-layer CLIP text transformer over the world's 118-token vocabulary, 16 positions."""
    tok_vocab, _ = vocab.build_vocab_and_merges()
    cfg = CLIPTextConfig(
        vocab_size=len(tok_vocab),
        hidden_size=TEXT_DIM,
        intermediate_size=4 * TEXT_DIM,
        projection_dim=TEXT_DIM,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=vocab.MODEL_MAX_LENGTH,
        bos_token_id=tok_vocab[vocab.BOS],
        eos_token_id=tok_vocab[vocab.EOS],
        pad_token_id=tok_vocab[vocab.EOS],
    )
    return CLIPTextModel(cfg)


def build_unet() -> UNet2DConditionModel:
    """Two levels (16x16 and 8x8), cross-attention at 8x8 only, no mid block.

    Chosen by measurement on the 2-core CPU: attention at 16x16 or a 4x4 third level cost more
    per step than they bought, and a CFG step at batch 2 must stay near 5-10 ms for 1000-step DDPM.
    """
    return UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        mid_block_type=None,
        cross_attention_dim=TEXT_DIM,
        attention_head_dim=4,  # diffusers' legacy name: 4 heads (of 16 channels each)
        use_linear_projection=True,
        norm_num_groups=32,
    )


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------ helpers
def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1], the range the SD pipeline's VAE decodes to."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def lr_at(step: int, progress: float, base: float, warmup: int) -> float:
    """Linear warm-up over `warmup` steps, then cosine decay to 10% of the base rate by progress 1."""
    if step < warmup:
        return base * (step + 1) / warmup
    p = min(max(progress, 0.0), 1.0)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))


def progress(step: int, total: int, started: float, seconds: float) -> float:
    """Fraction of a phase done: by steps, or by its time allowance if that runs out first.

    On an idle machine the step count decides (reproducible); on a slow or shared one the learning
    rate still finishes its decay inside the time allowance instead of being cut off mid-schedule.
    """
    by_time = (time.perf_counter() - started) / seconds if seconds > 0 else 0.0
    return max(step / max(total, 1), by_time)


class ThreadTuner:
    """Runs each training step at 1 or 2 threads, whichever is measured faster right now (--threads 0).

    On a 2-core machine shared with other jobs, 2 threads is ~2x faster when the machine is idle and
    10-20x slower when another process holds a core (OpenMP waits for a descheduled thread at every
    op). Every `every` steps, or at once when steps suddenly take twice as long, it probes the other
    setting for a few steps and keeps the faster one; a probe step 3x slower than usual ends the
    probe at once. A fixed --threads N disables this.
    """

    def __init__(self, threads: int, every: int = 200, probe_len: int = 4) -> None:
        self.auto = threads == 0
        self.choice = 1 if self.auto else threads
        self.every, self.probe_len = every, probe_len
        self.recent: list[float] = []
        self.baseline: float | None = None  # step time of the current choice when last confirmed
        self.probe: list[float] = []
        self.probe_until = -1
        torch.set_num_threads(self.choice)

    def _settle(self, choice: int, baseline: float) -> None:
        self.choice, self.baseline, self.probe_until = choice, baseline, -1

    def run(self, step: int, fn):
        if not self.auto:
            return fn()
        now = float(np.median(self.recent[-5:])) if self.recent else None
        if self.baseline is None and len(self.recent) >= 5:
            self.baseline = now
        scheduled = step == 20 or (step > 0 and step % self.every == 0)
        slowed = self.baseline is not None and now is not None and now > 2 * self.baseline
        if (scheduled or slowed) and now is not None and step >= self.probe_until:
            self.probe_until, self.probe = step + self.probe_len, []
        probing = step < self.probe_until
        n = 3 - self.choice if probing else self.choice
        torch.set_num_threads(n)
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        if probing:
            self.probe.append(dt)
            # The first probe step pays for waking the thread pool, so only a 10x step ends it.
            if dt > (3 if len(self.probe) > 1 else 10) * now:
                self._settle(self.choice, now)
            elif len(self.probe) == self.probe_len:
                tried = float(np.median(self.probe[1:]))
                if tried < now:
                    self._settle(n, tried)
                    self.recent = self.probe[1:]
                else:
                    self._settle(self.choice, now)
        else:
            self.recent = (self.recent + [dt])[-40:]
        torch.set_num_threads(self.choice)
        return out


class Clock:
    """Wall time since start, and whether the overall --minutes budget still allows more work."""

    def __init__(self, minutes: float) -> None:
        self.t0 = time.perf_counter()
        self.budget = minutes * 60.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def over(self, reserve: float = 0.0) -> bool:
        return self.elapsed() > self.budget - reserve


def log(msg: dict, fh) -> None:
    line = json.dumps(msg)
    print(line, flush=True)
    fh.write(line + "\n")
    fh.flush()


# ------------------------------------------------------------------------------------------ phases
def batches(images: np.ndarray, rng: np.random.Generator, opt: torch.optim.Optimizer, *, steps: int,
            seconds: float, lr: float, warmup: int, batch: int):
    """(step, batch) for each step of a phase, with the optimiser's learning rate set for it; the phase ends
    after `steps` or when its time allowance `seconds` runs out (see progress)."""
    t0 = time.perf_counter()
    for step in range(steps):
        done = progress(step, steps, t0, seconds)
        if done >= 1.0:
            return
        for g in opt.param_groups:
            g["lr"] = lr_at(step, done, lr, warmup)
        yield step, to_tensor(images[rng.integers(len(images), size=batch)])


def train_vae(vae: AutoencoderKL, images: np.ndarray, args, clock: Clock, fh) -> dict:
    """Reconstruction (MSE) plus a tiny KL term that only keeps the latents from drifting."""
    rng = np.random.default_rng(args.seed + 1)
    gen = torch.Generator().manual_seed(args.seed + 1)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    vae.train()
    recent: list[float] = []
    t0 = time.perf_counter()
    seconds = args.vae_minutes * 60.0
    tuner = ThreadTuner(args.threads)
    for step, x in batches(images, rng, opt, steps=args.vae_steps, seconds=seconds, lr=args.vae_lr, warmup=100,
                           batch=args.vae_batch):

        def one_step() -> tuple[float, float]:
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
            rec = vae.decode(z).sample
            mse = F.mse_loss(rec, x)
            kl = post.kl().mean() / post.mean[0].numel()
            loss = mse + args.vae_kl * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return mse.item(), kl.item()

        mse, kl = tuner.run(step, one_step)
        recent.append(mse)
        if (step + 1) % args.log_every == 0:
            log({"phase": "vae", "step": step + 1, "mse": float(np.mean(recent[-args.log_every:])),
                 "kl": kl, "threads": tuner.choice, "t": round(clock.elapsed(), 1)}, fh)
    vae.eval()
    return {"steps": len(recent), "planned_steps": args.vae_steps, "seconds": time.perf_counter() - t0,
            "final_train_mse": float(np.mean(recent[-100:]))}


def tune_decoder(vae: AutoencoderKL, images: np.ndarray, args, clock: Clock, fh) -> dict:
    """Fine-tune the VAE decoder alone, the encoder frozen, as Stability did for SD's ft-MSE decoder.

    Why: the encoder defines the latent space the U-Net was trained in, so a frozen encoder keeps every
    trained U-Net valid, while the decoder decides how sharp the decoded shapes are. On version 3's world
    the first decoder (1.8 minutes of joint VAE training) rounded the corners of 9-14 px diamonds and
    squares, so that the checker read 22% of plain encode-decode round trips as circles.
    """
    rng = np.random.default_rng(args.seed + 4)
    gen = torch.Generator().manual_seed(args.seed + 4)
    for module in (vae.encoder, vae.quant_conv):
        module.requires_grad_(False)
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.decoder_lr, weight_decay=0.0)
    vae.train()
    recent: list[float] = []
    t0 = time.perf_counter()
    for step, x in batches(images, rng, opt, steps=args.decoder_steps, seconds=args.decoder_minutes * 60.0,
                           lr=args.decoder_lr, warmup=50, batch=args.decoder_batch):
        with torch.no_grad():  # the latents the U-Net sees in training: the posterior, sampled
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
        loss = F.mse_loss(vae.decode(z).sample, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        recent.append(loss.item())
        if (step + 1) % args.log_every == 0:
            log({"phase": "decoder", "step": step + 1, "mse": float(np.mean(recent[-args.log_every:])),
                 "t": round(clock.elapsed(), 1)}, fh)
    vae.requires_grad_(True)
    vae.eval()
    return {"steps": len(recent), "planned_steps": args.decoder_steps, "seconds": time.perf_counter() - t0,
            "final_train_mse": float(np.mean(recent[-100:])) if recent else None}


@torch.no_grad()
def encode_all(vae: AutoencoderKL, images: np.ndarray, batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every training image: the U-Net samples latents from these."""
    means, stds = [], []
    for i in range(0, len(images), batch):
        post = vae.encode(to_tensor(images[i : i + batch])).latent_dist
        means.append(post.mean)
        stds.append(post.std)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def vae_heldout_mse(vae: AutoencoderKL, seed: int, n: int = 512) -> float:
    held = dataset.sample(seed, n).images
    x = to_tensor(held)
    rec = vae.decode(vae.encode(x).latent_dist.mode()).sample.clamp(-1, 1)
    return F.mse_loss(rec, x).item()


def tokenize(tokenizer: CLIPTokenizer, texts: list[str]) -> torch.Tensor:
    """Exactly the pipeline's tokenization: pad to model_max_length with the pad (= eos) token."""
    return tokenizer(texts, padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids


def train_denoiser(unet, text_encoder, tokenizer, means, stds, captions, scaling, args, clock, fh) -> dict:
    """Epsilon prediction under SD 1.5's noise schedule, text encoder trained jointly, EMA of both."""
    sched = DDPMScheduler.from_config(json.loads(args.scheduler_config.read_text()))
    rng = np.random.default_rng(args.seed + 2)
    gen = torch.Generator().manual_seed(args.seed + 2)
    uniq = sorted(set(captions))
    index = {c: i for i, c in enumerate(uniq)}
    cap_ids = np.array([index[c] for c in captions])
    ids_table = tokenize(tokenizer, uniq)
    uncond_ids = tokenize(tokenizer, [""])[0]

    # Min-SNR-gamma (--snr-gamma): epsilon-loss weight min(SNR, gamma) / SNR, as diffusers' text-to-image
    # example computes it for epsilon prediction. Plain epsilon MSE spends nearly all its gradient on
    # low-noise steps (texture), while colour and layout are decided at high noise, where the epsilon
    # residual is tiny; down-weighting the low-noise steps moves the budget towards what the checker reads.
    acp = sched.alphas_cumprod
    snr = acp / (1 - acp)
    snr_weight = (torch.clamp(snr, max=args.snr_gamma) / snr) if args.snr_gamma > 0 else torch.ones_like(snr)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    # From scratch the EMA warms up (its decay grows with the step, so early random weights fade fast).
    # Resumed from trained weights, --ema-constant holds the full decay from the first step instead:
    # with the warm-up the decay of a fresh EMA reaches 0.999 only after ~30k steps, so a resumed
    # stage of a few thousand steps would average over a few hundred steps only.
    min_decay = args.ema_decay if args.ema_constant else 0.0
    ema_unet = EMAModel(unet.parameters(), decay=args.ema_decay, min_decay=min_decay,
                        use_ema_warmup=not args.ema_constant)
    ema_text = EMAModel(text_encoder.parameters(), decay=args.ema_decay, min_decay=min_decay,
                        use_ema_warmup=not args.ema_constant)
    unet.train()
    text_encoder.train()
    losses: list[float] = []
    t0 = time.perf_counter()
    seconds = clock.budget - args.reserve_seconds - clock.elapsed()
    tuner = ThreadTuner(args.threads)
    stopped_by_time = False
    for step in range(args.steps):
        done = progress(step, args.steps, t0, seconds)
        if done >= 1.0:
            stopped_by_time = True
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step, done, args.lr, args.warmup)
        idx = rng.integers(len(means), size=args.batch)
        lat = (means[idx] + stds[idx] * torch.randn(means[idx].shape, generator=gen)) * scaling
        noise = torch.randn(lat.shape, generator=gen)
        t = torch.randint(0, sched.config.num_train_timesteps, (args.batch,), generator=gen)
        noisy = sched.add_noise(lat, noise, t)
        ids = ids_table[cap_ids[idx]].clone()
        drop = torch.rand(args.batch, generator=gen) < args.caption_dropout
        ids[drop] = uncond_ids

        def one_step() -> float:
            cond = text_encoder(ids)[0]
            pred = unet(noisy, t, encoder_hidden_states=cond).sample
            if args.snr_gamma > 0:  # Min-SNR-gamma weighting of the epsilon loss (Hang et al. 2023)
                per = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
                loss = (per * snr_weight[t]).mean()
            else:
                loss = F.mse_loss(pred, noise)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            ema_unet.step(unet.parameters())
            ema_text.step(text_encoder.parameters())
            return loss.item()

        losses.append(tuner.run(step, one_step))
        if (step + 1) % args.log_every == 0:
            dt = time.perf_counter() - t0
            log({"phase": "unet", "step": step + 1, "loss": float(np.mean(losses[-args.log_every:])),
                 "lr": opt.param_groups[0]["lr"], "steps_per_s": round((step + 1) / dt, 2),
                 "threads": tuner.choice, "t": round(clock.elapsed(), 1)}, fh)
    ema_unet.copy_to(unet.parameters())
    ema_text.copy_to(text_encoder.parameters())
    unet.eval()
    text_encoder.eval()
    return {"steps": len(losses), "planned_steps": args.steps, "stopped_by_time_allowance": stopped_by_time,
            "seconds": time.perf_counter() - t0,
            "final_train_loss": float(np.mean(losses[-200:])) if losses else None}


@torch.no_grad()
def heldout_denoise_loss(unet, text_encoder, tokenizer, vae, scaling, args, n: int = 512) -> float:
    """Epsilon MSE of the saved (EMA) weights on held-out images, at fixed timesteps and noise."""
    sched = DDPMScheduler.from_config(json.loads(args.scheduler_config.read_text()))
    b = dataset.sample(args.seed + 10_000, n)
    gen = torch.Generator().manual_seed(args.seed + 3)
    lat = vae.encode(to_tensor(b.images)).latent_dist.mode() * scaling
    noise = torch.randn(lat.shape, generator=gen)
    t = torch.linspace(0, sched.config.num_train_timesteps - 1, n).long()
    cond = text_encoder(tokenize(tokenizer, b.captions))[0]
    pred = unet(sched.add_noise(lat, noise, t), t, encoder_hidden_states=cond).sample
    return F.mse_loss(pred, noise).item()


def previous_stages(out: Path, args) -> dict[str, bytes]:
    """When continuing a folder in place, its earlier logs and summaries, to keep under history/.

    A model trained in stages is reproduced by running the same commands in order; the card
    quotes every stage, so each stage's record must survive the folder being rewritten.
    """
    if not (args.init_from and out.exists() and args.init_from.resolve() == out.resolve()):
        return {}
    kept = {p.name: p.read_bytes() for p in sorted((out / "history").glob("*"))}
    stage = 1 + sum(name.endswith("training_summary.json") for name in kept)
    for name in ("training_summary.json", "train_log.jsonl"):
        if (out / name).exists():
            kept[f"stage{stage}_{name}"] = (out / name).read_bytes()
    return kept


def save(out: Path, vae, text_encoder, unet, args) -> None:
    """A StableDiffusionPipeline folder; the scheduler config is SD 1.5's, copied byte for byte."""
    history = previous_stages(out, args)
    tmp_sched = out.parent / (out.name + ".scheduler_config.json")
    shutil.copyfile(args.scheduler_config, tmp_sched)  # may live inside `out`, which is replaced
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if history:
        (out / "history").mkdir()
        for name, data in history.items():
            (out / "history" / name).write_bytes(data)
    vocab.write_tokenizer(out / "tokenizer")
    text_encoder.save_pretrained(out / "text_encoder", safe_serialization=True)
    unet.save_pretrained(out / "unet", safe_serialization=True)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    (out / "scheduler").mkdir()
    shutil.move(tmp_sched, out / "scheduler" / "scheduler_config.json")
    import diffusers

    index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": diffusers.__version__,
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def quick_check(out: Path, seed: int, n: int = 32) -> dict:
    """Adherence of the saved folder with DPMSolverMultistep@20, CFG 7.5, on n world prompts."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    checker = importlib.import_module(dataset.__name__.rsplit(".", 1)[0] + ".checker")

    pipe = StableDiffusionPipeline.from_pretrained(out, safety_checker=None, requires_safety_checker=False)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    b = dataset.sample(seed + 20_000, n)
    gens = [torch.Generator("cpu").manual_seed(seed + 20_000 + i) for i in range(n)]
    imgs = pipe(b.captions, num_inference_steps=20, guidance_scale=7.5, generator=gens, output_type="np").images
    imgs = np.clip(np.round(imgs * 255), 0, 255).astype(np.uint8)
    res = checker.adherence(list(imgs), b.captions)
    return {k: v for k, v in res.items() if k == "match_rate" or k.endswith("_acc")}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "fixtures" / "tiny-shapes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--world", default="sampler_claims.tinyshapes",
                   help="the package of the world to train on (its dataset, vocab and checker modules)")
    p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = pick 1 or 2 by measured speed")
    p.add_argument("--n-images", type=int, default=40_000, help="training set size (generated, seed --seed)")
    p.add_argument("--vae-steps", type=int, default=1200)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--vae-kl", type=float, default=1e-5, help="weight of the per-element KL term")
    p.add_argument("--vae-minutes", type=float, default=7.0, help="time allowance of the VAE phase (0: none)")
    p.add_argument("--decoder-steps", type=int, default=0,
                   help="fine-tune the VAE decoder alone (encoder frozen, so a trained U-Net stays valid)")
    p.add_argument("--decoder-batch", type=int, default=32)
    p.add_argument("--decoder-lr", type=float, default=1e-3)
    p.add_argument("--decoder-minutes", type=float, default=8.0, help="time allowance of the decoder phase (0: none)")
    p.add_argument("--steps", type=int, default=8000, help="U-Net / text encoder optimisation steps")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--ema-constant", action="store_true",
                   help="hold the EMA decay at --ema-decay from step 1 (for stages resumed with --init-from)")
    p.add_argument("--snr-gamma", type=float, default=0.0,
                   help="Min-SNR-gamma loss weighting of the epsilon loss (0: plain MSE, as stages 1-3)")
    p.add_argument("--caption-dropout", type=float, default=0.1)
    p.add_argument("--minutes", type=float, default=40.0,
                   help="overall wall-time budget; the U-Net phase gets what the earlier phases leave "
                        "(less --reserve-seconds) and finishes its schedule early, and says so, to honour it")
    p.add_argument("--reserve-seconds", type=float, default=120.0, help="kept back for saving and checks")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from this saved folder's weights (with --vae-steps 0 its VAE is kept as is)")
    p.add_argument("--scheduler-config", type=Path, default=None,
                   help="SD 1.5's scheduler_config.json (default: fixtures/sd15-random's verbatim copy, else the one in --out)")
    args = p.parse_args(argv)
    if args.scheduler_config is None:
        shipped = args.out / "scheduler" / "scheduler_config.json"
        args.scheduler_config = SD15_SCHEDULER if SD15_SCHEDULER.exists() else shipped
    return args


def main(argv: list[str] | None = None) -> None:
    global dataset, vocab
    args = parse_args(argv)
    dataset = importlib.import_module(args.world + ".dataset")
    vocab = importlib.import_module(args.world + ".vocab")
    torch.set_num_threads(max(args.threads, 1))
    torch.manual_seed(args.seed)
    clock = Clock(args.minutes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log_path = args.out.parent / f"{args.out.name}.train.log"
    with open(log_path, "w") as fh:
        log({"phase": "start", "argv": sys.argv[1:], "threads": args.threads}, fh)
        data = dataset.sample(args.seed, args.n_images)
        log({"phase": "data", "n": args.n_images, "t": round(clock.elapsed(), 1)}, fh)

        if args.init_from:  # continue from a saved folder (e.g. a second, longer session)
            vae = AutoencoderKL.from_pretrained(args.init_from / "vae")
            text_encoder = CLIPTextModel.from_pretrained(args.init_from / "text_encoder")
            unet = UNet2DConditionModel.from_pretrained(args.init_from / "unet")
        else:
            vae, text_encoder, unet = build_vae(), build_text_encoder(), build_unet()
        if args.vae_steps > 0:
            vae_stats = train_vae(vae, data.images, args, clock, fh)
        else:  # keep the loaded VAE, and with it the latent space and scaling the U-Net learnt
            vae.eval()
            vae_stats = {"steps": 0, "kept_from": str(args.init_from)}
        if args.decoder_steps > 0:
            vae_stats["heldout_mse_before_decoder"] = vae_heldout_mse(vae, args.seed + 10_000)
            vae_stats["decoder"] = tune_decoder(vae, data.images, args, clock, fh)
        vae_stats["heldout_mse"] = vae_heldout_mse(vae, args.seed + 10_000)
        means, stds = encode_all(vae, data.images)
        if args.vae_steps > 0:
            scaling = float(1.0 / (means + stds * torch.randn_like(means)).std())
            vae.register_to_config(scaling_factor=scaling)
        else:
            scaling = float(vae.config.scaling_factor)
        if hasattr(dataset, "caption_share"):  # the share of the latents the caption fixes (what CFG amplifies)
            n_share = min(len(data.captions), 6000)
            vae_stats["latent_caption_share"] = dataset.caption_share(means[:n_share].numpy(), data.captions[:n_share])
        log({"phase": "vae_done", **vae_stats, "scaling_factor": scaling, "t": round(clock.elapsed(), 1)}, fh)

        tokenizer_dir = args.out.parent / f"{args.out.name}.tokenizer.tmp"
        vocab.write_tokenizer(tokenizer_dir)
        tokenizer = CLIPTokenizer.from_pretrained(tokenizer_dir)
        shutil.rmtree(tokenizer_dir)
        den_stats = train_denoiser(unet, text_encoder, tokenizer, means, stds, data.captions, scaling,
                                   args, clock, fh)
        den_stats["heldout_eps_mse_ema"] = heldout_denoise_loss(unet, text_encoder, tokenizer, vae, scaling, args)
        log({"phase": "unet_done", **den_stats, "t": round(clock.elapsed(), 1)}, fh)

        save(args.out, vae, text_encoder, unet, args)
        train_seconds = clock.elapsed()
        check = quick_check(args.out, args.seed)
        summary = {
            "command": "python scripts/train_tiny.py " + " ".join(sys.argv[1:]),
            "seed": args.seed,
            "world": args.world,
            "threads": args.threads,
            "torch": torch.__version__,
            "train_wall_seconds": round(train_seconds, 1),
            "vae": vae_stats | {"scaling_factor": scaling},
            "denoiser": den_stats,
            "params": {"unet": n_params(unet), "text_encoder": n_params(text_encoder), "vae": n_params(vae)},
            "quick_check_dpm20": check,
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        }
        (args.out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        summary["folder_bytes"] = folder_bytes(args.out)
        (args.out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        log({"phase": "done", "quick_check_dpm20": check, "folder_bytes": summary["folder_bytes"],
             "t": round(clock.elapsed(), 1)}, fh)
    shutil.move(log_path, args.out / "train_log.jsonl")  # the card quotes it; it lives with the weights


if __name__ == "__main__":
    main()
