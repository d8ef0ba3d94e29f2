"""CLIP score: the quality measure of Hugging Face's evaluation guide, with transformers' CLIP directly.

score(image, prompt) = max(100 * cos(image embedding, text embedding), 0), as in the guide and
torchmetrics' CLIPScore. `CLIPModel` and `CLIPProcessor` come from transformers, loaded like the
pipeline: a local folder, then the HF cache (huggingface_hub.snapshot_download(local_files_only=True)),
then the hub unless HF_HUB_OFFLINE is set. When no weights can be had, `load_clip` raises
`ClipUnavailable` whose message names the fix; the quality fixture turns that into an inconclusive
reason, so the run never fails over it.

The same code loads openai/clip-vit-base-patch16 for Stable Diffusion 1.5 on a GPU and the embedded
world's tiny CLIP (fixtures/tiny-clip/, trained by scripts/train_tiny_clip.py) on a CPU.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .paths import FIXTURES

#: The guide's CLIP, the default for every model that is not the embedded one.
DEFAULT_CLIP = "openai/clip-vit-base-patch16"
#: The embedded world's CLIP (scripts/train_tiny_clip.py).
TINY_CLIP = FIXTURES / "tiny-clip"
#: Images scored per forward pass.
BATCH = 64


class ClipUnavailable(RuntimeError):
    """No CLIP weights could be had; the message says how to get them."""


def fix_for(source: str) -> str:
    hub = source if not Path(source).is_absolute() and "/" in source and not Path(source).exists() else DEFAULT_CLIP
    return (f"pass --clip-model /path/to/a/local/CLIP/folder (saved with save_pretrained, with its weights), or fill "
            f"the Hugging Face cache on a machine with network: huggingface-cli download {hub}")


def resolve_source(arg: str, model_kind: str) -> str:
    """--clip-model auto: the embedded world's tiny CLIP on the embedded model, else the guide's CLIP."""
    if arg in ("", "auto"):
        return str(TINY_CLIP) if model_kind == "tiny" else DEFAULT_CLIP
    if arg == "tiny":
        return str(TINY_CLIP)
    return arg


def _from_folder(folder: Path, where: str) -> tuple[Any, Any]:
    from transformers import CLIPModel, CLIPProcessor

    try:
        model = CLIPModel.from_pretrained(folder, local_files_only=True)
        proc = CLIPProcessor.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - rewrapped with the fix
        raise ClipUnavailable(f"could not load a CLIP from {where} {folder}: {type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
    return model, proc


def load_clip(source: str, device: str = "cpu") -> "ClipScorer":
    """A local folder, then the HF cache, then the hub (unless HF_HUB_OFFLINE); ClipUnavailable names the fix."""
    from .quiet import no_loading_bars

    no_loading_bars()
    path = Path(source).expanduser()
    tried: list[str] = []
    if path.is_dir():
        try:
            model, proc = _from_folder(path, "the local folder")
        except ClipUnavailable as exc:
            raise ClipUnavailable(f"{exc}\n-> {fix_for(source)}") from exc
        return ClipScorer(model, proc, str(path), device)
    if path.exists() or source.startswith((".", "/", "~")):
        raise ClipUnavailable(f"--clip-model {source}: no such folder\n-> {fix_for(source)}")
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(source, local_files_only=True))
        model, proc = _from_folder(folder, "the HF cache")
        return ClipScorer(model, proc, source, device)
    except Exception as exc:  # noqa: BLE001 - not in the cache (or incomplete): try the hub next
        tried.append(f"HF cache: {type(exc).__name__}")
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise ClipUnavailable(f"CLIP {source} is not in the HF cache and HF_HUB_OFFLINE is set ({'; '.join(tried)})"
                              f"\n-> {fix_for(source)}")
    try:
        from transformers import CLIPModel, CLIPProcessor

        model = CLIPModel.from_pretrained(source)
        proc = CLIPProcessor.from_pretrained(source)
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, gated...
        tried.append(f"hub: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        raise ClipUnavailable(f"could not load CLIP {source} ({'; '.join(tried)})\n-> {fix_for(source)}") from exc
    return ClipScorer(model, proc, source, device)


def _features(out: Any) -> torch.Tensor:
    """get_*_features: a tensor in transformers 4, an output with the projection in pooler_output in 5."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@dataclass
class ClipScorer:
    model: Any
    processor: Any
    source: str
    device: str = "cpu"

    def __post_init__(self) -> None:
        self.model = self.model.to(self.device).eval()

    @property
    def name(self) -> str:
        return Path(self.source).name if Path(self.source).is_dir() else self.source

    @torch.no_grad()
    def image_embeddings(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        out = []
        for i in range(0, len(images), BATCH):
            px = self.processor(images=[np.asarray(im) for im in images[i:i + BATCH]], return_tensors="pt")
            out.append(_features(self.model.get_image_features(pixel_values=px["pixel_values"].to(self.device))))
        return torch.nn.functional.normalize(torch.cat(out).float().cpu(), dim=-1)

    @torch.no_grad()
    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        tok = self.processor.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        tok = {k: v.to(self.device) for k, v in tok.items()}
        return torch.nn.functional.normalize(_features(self.model.get_text_features(**tok)).float().cpu(), dim=-1)

    def scores(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        """CLIP score per image against its own prompt: max(100 * cos, 0)."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images for {len(prompts)} prompts")
        uniq = sorted(set(prompts))
        t = self.text_embeddings(uniq)
        index = {p: i for i, p in enumerate(uniq)}
        v = self.image_embeddings(images)
        cos = (v * t[[index[p] for p in prompts]]).sum(-1)
        return [float(x) for x in (100 * cos).clamp(min=0)]


def renderer_drop(scorer: ClipScorer, n: int = 200, seed: int = 4242) -> dict[str, float]:
    """The CLIP-score drop of rendering one attribute wrong, on the world's renderer (no sampler involved):
    score each rendered image against its own caption and against the caption with one attribute swapped
    for another of its values; mean drop per attribute and overall. The checker's scale is measured the
    same way (tinyshapes.checker.renderer_drop). The registry's CLIP margins on the embedded model are in
    these units (CLIP_PER_WRONG_ATTRIBUTE)."""
    from .tinyshapes import dataset
    from .tinyshapes.vocab import ATTRIBUTES, caption_of, swapped

    batch = dataset.sample(seed, n)
    rng = np.random.default_rng(seed + 1)
    own = scorer.scores(list(batch.images), batch.captions)
    out: dict[str, float] = {}
    for attr in ATTRIBUTES:
        wrong = scorer.scores(list(batch.images), [caption_of(swapped(a, attr, rng)) for a in batch.attributes])
        out[attr] = float(np.mean([x - y for x, y in zip(own, wrong)]))
    out["mean"] = float(np.mean([out[a] for a in ATTRIBUTES]))
    out["own_mean"] = float(np.mean(own))
    return out
