"""CLIP score (sampler_claims/clip.py) and the CLIP path's negative controls: the metric of Stable Diffusion 1.5's quality path.

No openai/clip-* weights are ever available here, so every CLIP is built in code, saved with
save_pretrained into a temporary folder and loaded back through the same `load_clip` that loads
openai/clip-vit-base-patch16 on a GPU.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sampler_claims import registry
from sampler_claims.clip import TINY_CLIP, ClipScorer, ClipUnavailable, load_clip, renderer_drop, resolve_source
from sampler_claims.paths import TOKENIZER
from sampler_claims.quality import Quality, Roster
from sampler_claims.rules.exercise1 import comparable_quality
from sampler_claims.rules.exercise2 import ddpm_50_step_count
from sampler_claims.rules.exercise3 import no_gain_past_25, sweet_spot
from sampler_claims.rules.exercise4 import ddpm_10_worse
from sampler_claims.rules.takeaways import recommended_default
from sampler_claims.tinyshapes import dataset
from sampler_claims.tinyshapes.vocab import ATTRIBUTES


def _tiny_clip(folder, weights: bool = True) -> None:
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTextConfig,
                              CLIPTokenizer, CLIPVisionConfig)

    tok = CLIPTokenizer.from_pretrained(TOKENIZER)
    text = CLIPTextConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                          num_attention_heads=2, max_position_embeddings=tok.model_max_length,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    vision = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                              num_attention_heads=2)
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=8))
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                     crop_size={"height": 32, "width": 32}),
                  tokenizer=tok).save_pretrained(folder)
    if not weights:
        for f in folder.glob("*.safetensors"):
            f.unlink()


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    _tiny_clip(folder)
    return folder


def test_a_clip_loads_from_a_local_folder_and_scores(clip_folder):
    torch.set_num_threads(1)
    scorer = load_clip(str(clip_folder))
    batch = dataset.sample(3, 4)
    s = scorer.scores(list(batch.images), batch.captions)
    assert len(s) == 4 and all(0.0 <= x <= 100.0 for x in s)
    # the score is 100 x cosine of the normalised embeddings, clipped at 0
    v = scorer.image_embeddings(list(batch.images))
    t = scorer.text_embeddings(batch.captions)
    expect = (100 * (v * t).sum(-1)).clamp(min=0)
    assert np.allclose(s, expect.numpy(), atol=1e-4)
    assert scorer.scores(list(batch.images), batch.captions) == s  # deterministic


def test_a_folder_without_weights_is_unavailable_with_the_fix(tmp_path):
    _tiny_clip(tmp_path, weights=False)
    with pytest.raises(ClipUnavailable) as e:
        load_clip(str(tmp_path))
    assert "--clip-model /path" in str(e.value) and "huggingface-cli download" in str(e.value)


def test_the_hub_default_offline_names_the_cache_command(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(ClipUnavailable) as e:
        load_clip("openai/clip-vit-base-patch16")
    assert "huggingface-cli download openai/clip-vit-base-patch16" in str(e.value)


def test_clip_model_auto_is_the_guides_clip_except_on_the_embedded_model():
    assert resolve_source("auto", "sd15") == "openai/clip-vit-base-patch16"
    assert resolve_source("auto", "tiny") == str(TINY_CLIP)
    assert resolve_source("/x/y", "tiny") == "/x/y"


def test_unavailable_clip_makes_the_quality_claims_inconclusive_with_the_fix(tmp_path):
    _tiny_clip(tmp_path, weights=False)
    try:
        load_clip(str(tmp_path))
    except ClipUnavailable as exc:
        q = Quality(False, "clip", clip_error=str(exc))
    assert not q.available and "--clip-model" in q.missing
    assert q.margin(0.05) != q.margin(0.05)  # nan: no scale without a CLIP, and nothing is compared
    v = ddpm_10_worse([], [], None, margin=1.0, missing=q.missing)
    assert v.verdict == "inconclusive" and "huggingface-cli download" in v.reason


# ------------------------------------------------------------------ a CLIP stub: one embedding for every image
class _FakeEngine:
    """Generations of made-up images: step count s gives images that get better with s (for the checker too)."""

    def generate(self, request):
        n = len(request.seeds)
        good = dataset.sample(11, n)
        rng = np.random.default_rng(request.steps)
        noise = rng.integers(0, 255, good.images.shape)
        w = min(1.0, request.steps / 20)
        images = np.clip(w * good.images + (1 - w) * noise, 0, 255).astype(np.uint8)
        return SimpleNamespace(images=images, request=request, latents=torch.zeros(n, 4, 4, 4))


def _stub(clip_folder) -> ClipScorer:
    scorer = load_clip(str(clip_folder))
    const = torch.nn.functional.normalize(torch.ones(1, 8), dim=-1)
    scorer.image_embeddings = lambda images: const.expand(len(images), -1)  # type: ignore[method-assign]
    return scorer


def test_a_clip_stub_blind_to_the_image_cannot_pass_its_control(clip_folder):
    q = Quality(True, "clip", clip=_stub(clip_folder), clip_per_wrong_attribute=2.5)
    batch = dataset.sample(5, 8)
    roster = Roster(tuple(batch.captions), tuple(range(8)))
    control, good, bad = q.control(_FakeEngine(), roster, registry.QUALITY_CONTROL.value, registry.CLIP_CONTROL.value)
    assert control is not None and not control.separates
    s = q.scores(good)
    m = q.margin(registry.COMPARABLE.value)
    verdicts = [
        comparable_quality({"DDPM@1000": s, "DDIM@50": s, "DPM-Solver@20": s}, control, margin=m),
        ddpm_10_worse(s, s, control, margin=q.margin(registry.MUCH_WORSE.value)),
        ddpm_50_step_count({"DDPM@1000": s, "DDIM@50": s, "DDPM@50": s}, control, margin=m, step_effect_margin=0.0,
                           roles=("DDPM@1000", "DDPM@50", "DDIM@50")),
        no_gain_past_25(s, s, control, margin=m),
        recommended_default(s, {20: s, 25: s}, {20: [0.01] * 4, 25: [0.01] * 4}, control, margin=m,
                            max_time_share=0.1),
        sweet_spot({k: s for k in (5, 10, 20, 200)}, {50: [0.99] * 8}, control, registry.get("sweet-spot").t,
                   margin=q.margin),
    ]
    for v in verdicts:
        assert v.verdict == "inconclusive", v.reason
        assert "failed its control" in v.reason or "does NOT separate" in v.reason


def test_clip_margins_count_wrong_attributes_like_the_checkers():
    q = Quality(True, "clip", clip=object(), clip_per_wrong_attribute=4.0)
    # COMPARABLE is 0.2 wrong attributes per image on the checker's scale (0.05 / 0.25)
    assert q.margin(registry.COMPARABLE.value) == pytest.approx(0.2 * 4.0)
    assert q.margin(registry.MUCH_WORSE.value) == pytest.approx(0.6 * 4.0)
    assert Quality(True).margin(0.05) == 0.05


# ------------------------------------------------------------------ the shipped tiny CLIP
needs_tiny_clip = pytest.mark.skipif(not (TINY_CLIP / "model.safetensors").exists(),
                                     reason="fixtures/tiny-clip not trained yet (scripts/train_tiny_clip.py)")


@needs_tiny_clip
def test_the_tiny_clip_is_small_and_carded():
    size = sum(p.stat().st_size for p in TINY_CLIP.glob("*.safetensors"))
    assert size <= 10 * 1024 * 1024
    card = (TINY_CLIP / "README.md").read_text()
    assert "Zero-shot accuracy" in card
    ev = json.loads((TINY_CLIP / "evaluation.json").read_text())
    assert ev["heldout_generator"]["vs_truth"]["all"] > 0.5


@needs_tiny_clip
def test_the_registry_scale_of_the_tiny_clip_is_its_renderer_calibration():
    """CLIP_PER_WRONG_ATTRIBUTE['tiny-clip'] is the renderer's swapped-attribute drop (no sampler involved)."""
    torch.set_num_threads(1)
    drop = renderer_drop(load_clip(str(TINY_CLIP)))
    assert drop["mean"] == pytest.approx(registry.CLIP_PER_WRONG_ATTRIBUTE["tiny-clip"], rel=0.05)
    assert min(drop[a] for a in ATTRIBUTES) > 0


MODULE = '''
import pytest
from sampler_claims.rules.exercise4 import ddpm_10_worse

@pytest.mark.claim("ddpm-10-worse")
def test_q(claim, quality):
    assert quality.mode == "clip"
    claim.decide(ddpm_10_worse([], [], None, margin=1.0, missing=quality.missing))
'''


@pytest.mark.parametrize("clip_arg", ["folder-without-weights", "default-offline"])
def test_an_sd15_style_run_without_clip_weights_is_inconclusive_never_failed(pytester, dummy_folder, tmp_path,
                                                                              monkeypatch, clip_arg):
    """A diffusers folder (no checker: --quality auto = clip) and no CLIP weights: the claim is inconclusive, the
    reason names the fix, the run exits 0."""
    pytester.makepyfile(test_claims=MODULE)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    args = ["-p", "sampler_claims.plugin", "--model", str(dummy_folder), "--claims-report",
            str(pytester.path / "out" / "index.html")]
    if clip_arg == "folder-without-weights":
        _tiny_clip(tmp_path / "clip", weights=False)
        args += ["--clip-model", str(tmp_path / "clip")]
    r = pytester.runpytest_subprocess(*args)
    assert r.ret == 0
    data = json.loads((pytester.path / "out" / "claims.json").read_text())
    rec = next(c for c in data["claims"] if c["id"] == "ddpm-10-worse")
    assert rec["verdict"] == "inconclusive"
    assert "--clip-model /path" in rec["reason"] and "huggingface-cli download" in rec["reason"]


def test_sd15_random_skips_the_quality_claims_before_loading_any_clip(tmp_path):
    """--model sd15-random --quality clip: the quality claims are skipped ("random weights") before any CLIP load
    or generation (the quality fixtures ask for the claim first)."""
    import subprocess
    import sys

    from sampler_claims.paths import REPO_ROOT

    report = tmp_path / "index.html"
    not_a_clip = tmp_path / "not-a-clip"  # a folder (a missing one is a usage error) that no CLIP loads from
    not_a_clip.mkdir()
    out = subprocess.run([sys.executable, "-m", "pytest", "claims/", "-q", "-p", "no:randomly", "--model", "sd15-random",
                          "--quality", "clip", "--clip-model", str(not_a_clip), "--claim",
                          "no-gain-past-25", "--claim", "ddpm-10-worse", "--claims-report", str(report)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    data = json.loads((tmp_path / "claims.json").read_text())
    for c in data["claims"]:
        if c["id"] in ("no-gain-past-25", "ddpm-10-worse"):
            assert c["verdict"] == "skipped" and "random weights" in c["reason"], c


@needs_tiny_clip
def test_the_claims_run_on_the_clip_path_on_the_embedded_model(tmp_path):
    """`pytest claims/ --quality clip` end to end on the embedded model, on the claim whose roster is the longest
    (its DDPM pairs run on more seeds than the convergence reference): it is decided or inconclusive, never an
    error. CLIP scoring, the control and the reference's seeds all run through the plugin as a user runs them."""
    import subprocess
    import sys

    from sampler_claims.paths import REPO_ROOT

    report = tmp_path / "index.html"
    out = subprocess.run([sys.executable, "-m", "pytest", "claims/", "-q", "-p", "no:randomly", "--quality", "clip",
                          "--seeds", "4", "--claim", "comparable-quality", "--claims-report", str(report)],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-1500:] + out.stdout[-3000:]
    claims = json.loads((tmp_path / "claims.json").read_text())["claims"]
    rec = next(c for c in claims if c["id"] == "comparable-quality")
    assert rec["verdict"] in ("confirmed", "refuted", "inconclusive"), rec
    assert "CLIP score (tiny-clip)" in rec["plain"], rec["plain"]
