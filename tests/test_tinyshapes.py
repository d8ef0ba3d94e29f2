"""The embedded tiny world: its generator, its independent checker, and the trained model it ships.

The checker is the yardstick for every adherence claim on the embedded model, so it is held to a
high bar on images the generator draws with seeds never used in development, and must refuse
images that show nothing.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sampler_claims import paths
from sampler_claims.tinyshapes import checker, dataset
from sampler_claims.tinyshapes.vocab import COLORS, SHAPES, caption

HELD_OUT_SEED = 424_242  # never used while the checker or the model was developed


def test_generator_is_deterministic() -> None:
    a, b = dataset.sample(7, 16), dataset.sample(7, 16)
    assert np.array_equal(a.images, b.images)
    assert a.captions == b.captions and a.attributes == b.attributes
    assert not np.array_equal(a.images, dataset.sample(8, 16).images)


def test_generator_output_is_well_formed() -> None:
    batch = dataset.sample(3, 64)
    assert batch.images.shape == (64, 32, 32, 3) and batch.images.dtype == np.uint8
    for attrs, cap in zip(batch.attributes, batch.captions):
        assert attrs["fg"] != attrs["bg"]
        assert attrs["shape"] in SHAPES and attrs["fg"] in COLORS and attrs["bg"] in COLORS
        assert cap == caption(attrs["shape"], attrs["fg"], attrs["bg"])


def test_checker_reads_held_out_generator_images() -> None:
    batch = dataset.sample(HELD_OUT_SEED, 250)
    result = checker.adherence(batch.images, batch.captions)
    assert result["match_rate"] >= 0.98, {k: result[k] for k in ("match_rate", "shape_acc", "fg_acc", "bg_acc")}
    assert len(result["per_image"]) == 250


@pytest.mark.parametrize("kind", ["black", "constant", "white", "noise", "smooth-noise"])
def test_images_showing_nothing_do_not_match(kind: str) -> None:
    rng = np.random.default_rng(0)
    image = {
        "black": np.zeros((32, 32, 3), np.uint8),
        "constant": np.full((32, 32, 3), COLORS["blue"], np.uint8),
        "white": np.full((32, 32, 3), 255, np.uint8),
        "noise": rng.integers(0, 256, (32, 32, 3)).astype(np.uint8),
        "smooth-noise": np.repeat(np.repeat(rng.integers(0, 256, (8, 8, 3)), 4, 0), 4, 1).astype(np.uint8),
    }[kind]
    for shape in SHAPES:
        for fg, bg in (("red", "blue"), ("white", "black"), ("yellow", "green")):
            assert not checker.check(image, caption(shape, fg, bg)).match


def test_parse_prompt() -> None:
    assert checker.parse_prompt("a red circle on a blue background") == {"shape": "circle", "fg": "red", "bg": "blue"}
    assert checker.parse_prompt("A Red Circle on a Blue background.") == {"shape": "circle", "fg": "red", "bg": "blue"}
    assert checker.parse_prompt("a cat sitting on a beach at sunset") is None
    assert checker.parse_prompt("a red hexagon on a blue background") is None
    assert checker.parse_prompt("a red circle on a red background") is None
    with pytest.raises(ValueError, match="outside"):
        checker.check(np.zeros((32, 32, 3), np.uint8), "a cat sitting on a beach at sunset")


#: Deterministic smoke generation: fixed prompts and seeds that the shipped model renders correctly
#: (seeds picked on the shipped model; about 4 in 5 seeds match at DPM-Solver@20, see the model card).
SMOKE = [
    (caption("circle", "yellow", "blue"), 42),
    (caption("triangle", "white", "red"), 120),
    (caption("diamond", "orange", "purple"), 121),
    (caption("square", "green", "black"), 42),
]


@pytest.fixture(scope="module")
def tiny_pipe(monkeypatch_module):
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")
    pipe = StableDiffusionPipeline.from_pretrained(
        paths.TINY_MODEL, safety_checker=None, requires_safety_checker=False, local_files_only=True
    )
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_trained_model_is_a_standard_sd_folder(tiny_pipe) -> None:
    assert type(tiny_pipe.scheduler).__name__ == "DPMSolverMultistepScheduler"
    assert tiny_pipe.unet.config.sample_size * tiny_pipe.vae_scale_factor == 32
    assert tiny_pipe.text_encoder.config.max_position_embeddings == 16
    assert tiny_pipe.safety_checker is None


def test_trained_model_smoke_generation_is_accepted_by_checker(tiny_pipe) -> None:
    prompts = [p for p, _ in SMOKE]
    gens = [torch.Generator("cpu").manual_seed(s) for _, s in SMOKE]
    out = tiny_pipe(prompts, num_inference_steps=20, guidance_scale=7.5, generator=gens, output_type="np").images
    images = np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
    results = [checker.check(im, p) for im, p in zip(images, prompts)]
    assert all(r.match for r in results), [(p, r.read) for p, r in zip(prompts, results)]
