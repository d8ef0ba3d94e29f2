"""Train the tiny CLIP of the embedded world (fixtures/tiny-clip/), contrastively, on one CPU thread.

Why: on Stable Diffusion 1.5 the suite's quality claims rest on CLIP score
(openai/clip-vit-base-patch16) and convergence to a reference. The embedded world has no CLIP
weights, so this script trains a small transformers `CLIPModel` on the shapes generator's
image-caption pairs. The suite then loads it with exactly the code that loads openai/clip-* on a GPU
(`CLIPModel.from_pretrained`, `CLIPProcessor`, image and text features, the score), and the analytic
checker can referee the CLIP path (`pytest claims/ --quality clip`).

Reproduce:   python scripts/train_tiny_clip.py               (train, then evaluate; ~15 min, 1 thread)
Re-evaluate: python scripts/train_tiny_clip.py --eval-only   (rewrites the model card's numbers)

The model card (fixtures/tiny-clip/README.md) gives its zero-shot accuracy against the analytic checker
on held-out generator images and on the embedded diffusion model's own samples.
"""
from __future__ import annotations

import argparse
import importlib
import json
import tempfile
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sampler_claims.tinyshapes import checker, dataset, vocab  # noqa: E402  (replaced by --world)

OUT = ROOT / "fixtures" / "tiny-clip"
#: The embedded diffusion model whose samples the second accuracy figure reads (--model).
MODEL = ROOT / "fixtures" / "tiny-shapes"
#: Seeds of the generator: training pool, and a held-out pool never seen in training.
TRAIN_SEED, HELDOUT_SEED = 1100, 990_001
#: The embedded model's samples for the second accuracy figure (seeds outside every claim's roster).
SAMPLE_SEED, SAMPLE_N, SAMPLE_STEPS = 500_000, 96, 20


def all_captions() -> list[str]:
    """Every caption of the world."""
    return vocab.all_captions()


def build(seed: int = 0):
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTextConfig,
                              CLIPTokenizer, CLIPVisionConfig)

    with tempfile.TemporaryDirectory() as folder:  # the world's own tokenizer, as the diffusion model has it
        vocab.write_tokenizer(Path(folder))
        tok = CLIPTokenizer.from_pretrained(folder)
    text = CLIPTextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                          num_attention_heads=4, max_position_embeddings=tok.model_max_length,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, projection_dim=64)
    vision = CLIPVisionConfig(image_size=dataset.SIZE, patch_size=4, num_channels=3, hidden_size=64,
                              intermediate_size=128, num_hidden_layers=3, num_attention_heads=4, projection_dim=64)
    cfg = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=64)
    torch.manual_seed(seed)
    model = CLIPModel(cfg)
    # 32x32 in, no resize or crop (the world's native size); CLIP's own normalisation constants.
    image_proc = CLIPImageProcessor(size={"shortest_edge": dataset.SIZE},
                                    crop_size={"height": dataset.SIZE, "width": dataset.SIZE})
    return model, CLIPProcessor(image_processor=image_proc, tokenizer=tok)


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Light corruptions (blur, noise) so the model reads imperfect samples too, not only crisp renders.

    x: [B, 3, H, W] in 0..1. Never changes an attribute: the caption stays true.
    """
    b = x.shape[0]
    blur = torch.rand(b, generator=g) < 0.3
    if blur.any():
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :]) / 16
        w = k.expand(3, 1, 3, 3)
        x = torch.where(blur[:, None, None, None], F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), w, groups=3), x)
    sigma = (torch.rand(b, generator=g) < 0.4).float() * torch.rand(b, generator=g) * 0.05
    x = x + sigma[:, None, None, None] * torch.randn(x.shape, generator=g)
    return x.clamp(0, 1)


def to_pixels(images: np.ndarray, proc) -> torch.Tensor:
    return proc.image_processor(images=list(images), return_tensors="pt")["pixel_values"]


def normalize(x01: torch.Tensor, proc) -> torch.Tensor:
    ip = proc.image_processor
    mean = torch.tensor(ip.image_mean)[None, :, None, None]
    std = torch.tensor(ip.image_std)[None, :, None, None]
    return (x01 - mean) / std


def caption_ids(caps: list[str], proc) -> tuple[torch.Tensor, torch.Tensor]:
    t = proc.tokenizer(caps, padding="max_length", max_length=proc.tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    return t["input_ids"], t["attention_mask"]


def train(minutes: float, batch: int, lr: float, pool: int) -> dict:
    torch.set_num_threads(1)
    model, proc = build()
    t0 = time.time()
    data = dataset.sample(TRAIN_SEED, pool)
    print(f"rendered {pool} training images in {time.time() - t0:.0f}s", flush=True)
    x_all = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 255
    caps = all_captions()
    index = {c: i for i, c in enumerate(caps)}
    y_all = torch.tensor([index[c] for c in data.captions])
    ids_all, mask_all = caption_ids(caps, proc)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05)
    g = torch.Generator().manual_seed(0)
    log = []
    step, start = 0, time.time()
    budget = minutes * 60
    model.train()
    while time.time() - start < budget:
        frac = (time.time() - start) / budget
        for grp in opt.param_groups:  # warm-up then cosine decay over the time budget
            grp["lr"] = lr * min(1.0, (step + 1) / 200) * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        idx = torch.randint(0, pool, (batch,), generator=g)
        x = normalize(augment(x_all[idx], g), proc)
        y = y_all[idx]
        # Texts of the batch: the distinct captions present (a caption shared by two images is one text,
        # so no image is pushed away from its own true caption).
        uniq, inv = torch.unique(y, return_inverse=True)
        out = model(input_ids=ids_all[uniq], attention_mask=mask_all[uniq], pixel_values=x)
        logits = out.logits_per_image  # [B, U]
        loss_i = F.cross_entropy(logits, inv)
        # text -> image: each text's positives are every image with that caption (soft target).
        tgt = (inv[None, :] == torch.arange(len(uniq))[:, None]).float()
        tgt = tgt / tgt.sum(1, keepdim=True)
        loss_t = -(tgt * F.log_softmax(logits.t(), dim=1)).sum(1).mean()
        loss = (loss_i + loss_t) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 100 == 0:
            acc = float((logits.argmax(1) == inv).float().mean())
            rec = {"step": step, "seconds": round(time.time() - start, 1), "loss": round(float(loss), 4),
                   "batch_acc": round(acc, 3), "lr": round(opt.param_groups[0]["lr"], 6),
                   "logit_scale": round(float(model.logit_scale.exp()), 2)}
            log.append(rec)
            print(json.dumps(rec), flush=True)
    seconds = time.time() - start
    OUT.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(OUT, safe_serialization=True)
    proc.save_pretrained(OUT)
    with open(OUT / "train_log.jsonl", "w") as f:
        for r in log:
            f.write(json.dumps(r) + "\n")
    summary = {"steps": step, "train_seconds": round(seconds, 1), "batch": batch, "lr": lr, "pool": pool,
               "train_seed": TRAIN_SEED, "threads": 1, "torch": torch.__version__}
    (OUT / "training_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _feat(out) -> torch.Tensor:
    """get_*_features returns a tensor in transformers 4 and an output with the projection in pooler_output in 5."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@torch.no_grad()
def zero_shot(images: np.ndarray, model, proc) -> list[dict[str, str]]:
    """Attributes of the argmax caption among all captions of the world, per image."""
    caps = all_captions()
    ids, mask = caption_ids(caps, proc)
    t = F.normalize(_feat(model.get_text_features(input_ids=ids, attention_mask=mask)), dim=-1)
    out = []
    for i in range(0, len(images), 128):
        v = F.normalize(_feat(model.get_image_features(pixel_values=to_pixels(images[i:i + 128], proc))), dim=-1)
        for k in (v @ t.T).argmax(1).tolist():
            out.append(checker.parse_prompt(caps[k]))
    return out


def accuracy(pred: list[dict[str, str]], truth: list[dict[str, str] | None]) -> dict:
    keep = [(p, t) for p, t in zip(pred, truth) if t is not None]
    n = len(keep)
    res = {"n": n}
    for a in vocab.ATTRIBUTES:
        res[a] = round(sum(p[a] == t[a] for p, t in keep) / max(n, 1), 4)
    res["all"] = round(sum(all(p[a] == t[a] for a in vocab.ATTRIBUTES) for p, t in keep) / max(n, 1), 4)
    return res


def reading(r) -> dict[str, str | None]:
    """The checker's reading as an attribute dict."""
    return {a: getattr(r, a) for a in vocab.ATTRIBUTES}


def evaluate(n_heldout: int = 1000) -> dict:
    from transformers import CLIPModel, CLIPProcessor

    torch.set_num_threads(1)
    model = CLIPModel.from_pretrained(OUT).eval()
    proc = CLIPProcessor.from_pretrained(OUT)
    held = dataset.sample(HELDOUT_SEED, n_heldout)
    # On generator images the checker's reading is the generator's truth (it reads them all, see
    # tests/test_tinyshapes.py); we score against both the truth and the checker.
    pred = zero_shot(held.images, model, proc)
    readings = [checker.read(im) for im in held.images]
    checker_truth = [reading(r) for r in readings]
    res = {"heldout_generator": {"seed": HELDOUT_SEED, "vs_truth": accuracy(pred, held.attributes),
                                 "vs_checker": accuracy(pred, checker_truth)}}
    # The embedded model's own samples (DPM-Solver++@20, the lesson's default): the checker is the referee.
    from diffusers import StableDiffusionPipeline

    from sampler_claims.engine import Engine, Request
    from sampler_claims.models import native_size
    from sampler_claims.schedulers import SchedulerSpec

    pipe = StableDiffusionPipeline.from_pretrained(MODEL, safety_checker=None,
                                                   requires_safety_checker=False, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    engine = Engine(pipe, model_key="tiny-clip-eval", size=native_size(pipe), device="cpu")
    captions = all_captions()
    prompts = tuple(captions[(7 + i) % len(captions)] for i in range(SAMPLE_N))
    seeds = tuple(SAMPLE_SEED + i for i in range(SAMPLE_N))
    gen = engine.generate(Request(SchedulerSpec.of("dpm-solver"), SAMPLE_STEPS, seeds, prompts))
    imgs = np.asarray(gen.images)
    pred = zero_shot(imgs, model, proc)
    reads = [checker.read(im) for im in imgs]
    seen = [reading(r) for r in reads]
    # Only images the checker reads fully can referee every attribute; per attribute, those it read.
    per_attr = {}
    for a in vocab.ATTRIBUTES:
        pairs = [(p[a], s[a]) for p, s in zip(pred, seen) if s[a] is not None]
        per_attr[a] = round(sum(x == y for x, y in pairs) / max(len(pairs), 1), 4)
    full = [(p, s) for p, s in zip(pred, seen) if None not in s.values()]
    asked = [checker.parse_prompt(p) for p in prompts]
    res["embedded_model_samples"] = {
        "sampler": f"DPM-Solver++@{SAMPLE_STEPS}", "n": SAMPLE_N, "seeds": [seeds[0], seeds[-1]],
        "vs_checker_reading": {"per_attribute": per_attr, "n_fully_read": len(full),
                               "all": round(sum(p == s for p, s in full) / max(len(full), 1), 4)},
        "vs_prompt": accuracy(pred, asked),
        "checker_vs_prompt": accuracy([s if None not in s.values() else dict.fromkeys(vocab.ATTRIBUTES, "")
                                       for s in seen], asked),
    }
    (OUT / "evaluation.json").write_text(json.dumps(res, indent=2))
    write_card(res)
    return res


def write_card(res: dict) -> None:
    summ = json.loads((OUT / "training_summary.json").read_text())
    size = sum(p.stat().st_size for p in OUT.glob("*.safetensors"))
    h, s = res["heldout_generator"], res["embedded_model_samples"]
    names = {"shape": "shape", "fg": "colour"}
    attrs = vocab.ATTRIBUTES

    def row(label: str, n, acc: dict) -> str:
        return f"| {label} | {n} | " + " | ".join(f"{acc[a]:.3f}" for a in (*attrs, "all")) + " |"

    sampled = s["vs_checker_reading"]
    rows = "\n".join([
        row(f"held-out generator images (seed {HELDOUT_SEED}) vs the generator's truth", h["vs_truth"]["n"], h["vs_truth"]),
        row("same images vs the analytic checker's reading", h["vs_checker"]["n"], h["vs_checker"]),
        row(f"the embedded model's own samples ({s['sampler']}) vs the checker's reading",
            f"{s['n']} ({sampled['n_fully_read']} fully read)", {**sampled["per_attribute"], "all": sampled["all"]}),
        row("the same samples vs their prompts", s["vs_prompt"]["n"], s["vs_prompt"]),
        row("(for scale) the checker's reading vs the prompts", s["checker_vs_prompt"]["n"], s["checker_vs_prompt"]),
    ])
    card = f"""---
library_name: transformers
tags: [clip, tiny, sampler-claims]
---
# tiny-clip: a CLIP for the embedded world

A `transformers` `CLIPModel` (vision: ViT, 32x32 input, 4x4 patches, 3 layers, width 64; text: 2 layers,
width 64, the world's tokenizer; projection 64) trained contrastively on the world generator's
image-caption pairs (`{dataset.__name__}`, seed {summ['train_seed']}, a pool of
{summ['pool']} images, light blur and noise augmentation). Weights: `model.safetensors`, {size / 1e6:.2f} MB.

Why it exists: on Stable Diffusion 1.5 the suite scores quality with CLIP score
(openai/clip-vit-base-patch16, as in Hugging Face's evaluation guide). This model lets the embedded model
run that same path on a CPU, with the same loading and scoring code (`sampler_claims/clip.py`), while the
analytic checker referees it: `pytest claims/ --quality clip`.

Reproduce: `python scripts/train_tiny_clip.py` ({summ['steps']} steps of batch {summ['batch']} in
{summ['train_seconds'] / 60:.1f} min on one CPU thread, torch {summ['torch']}); `--eval-only` recomputes the
numbers below into `evaluation.json` and this card.

## Zero-shot accuracy

The image's caption is the argmax over all {len(all_captions())} captions of the world.

| images | n | {" | ".join(names.get(a, a) for a in attrs)} | all |
|---|---|{"---|" * len(attrs)}---|
{rows}

## Limits

It knows only this world: {len(vocab.SHAPES)} shapes, {len(vocab.COLORS)} colours, one caption template, 32x32 pixels. Its CLIP scores
are on its own scale, not comparable with openai/clip-* scores; the suite's CLIP margins are calibrated per
model on the world's renderer (`sampler_claims/registry.py`).
"""
    (OUT / "README.md").write_text(card)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=14.0, help="training time budget (wall clock)")
    ap.add_argument("--batch", type=int, default=192)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--pool", type=int, default=30000, help="generator images rendered for training")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--world", default="sampler_claims.tinyshapes", help="the world's package")
    ap.add_argument("--model", type=Path, default=MODEL, help="the embedded diffusion model whose samples are read")
    ap.add_argument("--out", type=Path, default=OUT, help="where the CLIP and its card are written")
    a = ap.parse_args()
    checker = importlib.import_module(a.world + ".checker")
    dataset = importlib.import_module(a.world + ".dataset")
    vocab = importlib.import_module(a.world + ".vocab")
    MODEL, OUT = a.model, a.out
    if not a.eval_only:
        print(json.dumps(train(a.minutes, a.batch, a.lr, a.pool)), flush=True)
    print(json.dumps(evaluate(), indent=2), flush=True)
