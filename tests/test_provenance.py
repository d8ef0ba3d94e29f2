"""What a run was measured on, in words: every model described, never by a local folder's path."""
from __future__ import annotations

from sampler_claims import provenance


def test_every_model_kind_is_described_without_a_local_path() -> None:
    tiny = provenance.model({"model": "tiny", "model_source": "/home/a/clone/fixtures/tiny-shapes"})
    assert tiny.name == "the embedded tiny model" and "32-pixel" in tiny.what and "/home" not in tiny.described
    assert provenance.model({"model": "sd15", "model_source": "/root/.cache/hf/snapshots/x"}).name == \
        "Stable Diffusion 1.5"
    assert "random weights" in provenance.model({"model": "sd15-random"}).name
    folder = provenance.model({"model": "folder", "model_source": "/home/a/models/my-sd"})
    assert folder.name == "the local model 'my-sd'" and "/home" not in folder.described
    hub = provenance.model({"model": "hub", "model_source": "someone/some-model"})
    assert hub.name == "the model someone/some-model"


def test_the_facts_line_names_model_device_versions_seeds_and_date() -> None:
    env = {"model": "sd15", "device": "cuda", "gpu": "NVIDIA H200", "dtype": "float16", "diffusers": "0.42.1",
           "torch": "2.13.0", "seeds": 32, "seed_base": 0, "ddpm_seeds": 64, "started": "2026-12-03T08:46:04+00:00"}
    line = provenance.one_line(env)
    for part in ("Stable Diffusion 1.5", "on NVIDIA H200 (float16)", "diffusers 0.42.1", "torch 2.13.0",
                 "32 prompt-seed pairs from seed 0 (64 for the claims paired with DDPM)", "2026-12-03 08:46 UTC"):
        assert part in line, part


def test_public_values_keep_no_home_folder() -> None:
    env = {"model_source": "/home/a/elsewhere/tiny-shapes", "clip_model": "auto", "nested": {"p": "/tmp/x/y.json"}}
    out = provenance.public(env)
    assert out["model_source"] == "…/tiny-shapes" and out["clip_model"] == "auto" and out["nested"]["p"] == "…/y.json"
    inside = str(provenance.paths.TINY_MODEL)
    assert provenance.public(inside) == "fixtures/tiny-shapes"
