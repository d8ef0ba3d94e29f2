"""Loading the pipeline a run measures: from_pretrained for real models, configs for random weights.

Also the random-weight tiny pipeline the harness's own tests use, built in the style of diffusers'
`get_dummy_components`: every component seeded before it is made, so two builds are identical.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    PNDMScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from . import paths
from .options import Settings


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message says how to get it or what to pass instead."""


@dataclass
class LoadedModel:
    pipe: StableDiffusionPipeline
    settings: Settings
    load_seconds: float
    #: Native output side in pixels, unless --size overrides it.
    size: int

    @property
    def info(self) -> dict[str, Any]:
        return {
            "model": self.settings.model_kind,
            "model_source": self.settings.model_source,
            "model_reason": self.settings.model_reason,
            "size": self.size,
            "load_seconds": round(self.load_seconds, 3),
        }


def _quiet(pipe: StableDiffusionPipeline) -> StableDiffusionPipeline:
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_from_configs(folder: Path, seed: int = 0) -> StableDiffusionPipeline:
    """A pipeline with random weights from a folder of configs (sd15-random): seeded per component."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet"))
    torch.manual_seed(seed)
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae"))
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig.from_pretrained(folder / "text_encoder"))
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    scheduler = PNDMScheduler.from_config(PNDMScheduler.load_config(folder / "scheduler"))
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def get_dummy_components(seed: int = 0) -> dict[str, Any]:
    """Random-weight tiny components for the harness's own tests: fast, seeded, offline."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16, attention_head_dim=4, norm_num_groups=4,
    )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), norm_num_groups=4, sample_size=16,
    )
    tokenizer = CLIPTokenizer.from_pretrained(paths.SD15_RANDOM / "tokenizer")
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
            num_attention_heads=2, max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = PNDMScheduler.from_config(PNDMScheduler.load_config(paths.SD15_RANDOM / "scheduler"))
    return {
        "unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer,
        "scheduler": scheduler, "safety_checker": None, "feature_extractor": None,
        "requires_safety_checker": False,
    }


def dummy_pipeline(seed: int = 0) -> StableDiffusionPipeline:
    return _quiet(StableDiffusionPipeline(**get_dummy_components(seed)))


def native_size(pipe: StableDiffusionPipeline) -> int:
    return int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)


def load(settings: Settings) -> LoadedModel:
    """Load the pipeline the settings name, once; errors say how to fix them."""
    import time

    from .quiet import no_loading_bars

    no_loading_bars()  # diffusers' and transformers' tqdm bars would print into pytest's header
    start = time.perf_counter()
    kind, source = settings.model_kind, settings.model_source
    try:
        if kind == "sd15-random":
            pipe = build_from_configs(Path(source))
            pipe = pipe.to(dtype=settings.dtype)
        else:
            local_only = Path(source).is_dir()
            pipe = StableDiffusionPipeline.from_pretrained(
                source, torch_dtype=settings.dtype, safety_checker=None, requires_safety_checker=False,
                local_files_only=local_only,
            )
    except Exception as exc:  # noqa: BLE001 - rewrapped with the fix
        hint = (
            "pass --model PATH to a local diffusers folder, or --model tiny for the embedded model"
            if kind in ("sd15", "hub")
            else "check that the folder was saved with save_pretrained and holds every component's weights"
        )
        raise ModelLoadError(f"could not load {kind} model from {source}: {exc}\n-> {hint}") from exc
    if settings.offload:
        pipe.enable_model_cpu_offload(device=settings.device)
    else:
        pipe = pipe.to(settings.device)
    _quiet(pipe)
    size = settings.size or native_size(pipe)
    return LoadedModel(pipe=pipe, settings=settings, load_seconds=time.perf_counter() - start, size=size)


__all__ = ["LoadedModel", "ModelLoadError", "load", "build_from_configs", "get_dummy_components",
           "dummy_pipeline", "native_size"]
