"""scripts/evaluate_tiny.py: the model card's numbers come from it, so its paired before/after and its
convergence study are tested like the suite's own code."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ev():
    spec = importlib.util.spec_from_file_location("evaluate_tiny", ROOT / "scripts" / "evaluate_tiny.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_tiny"] = module
    spec.loader.exec_module(module)
    return module


def _report(seed: int, matches: list[int]) -> dict:
    row = {"per_pair_match": matches}
    return {"prompt_seed": seed, "configs": {"DDIM@50": row}, "reference": {"per_pair_match": matches}}


def test_paired_change_pairs_by_index_over_the_shorter_report(ev) -> None:
    before = _report(5000, [0, 0, 1, 1, 0, 1])
    after = _report(5000, [1, 0, 1, 1])  # first 4 pairs of the same prompt seed
    out = ev.paired_changes(before, after)
    assert out["DDIM@50"]["n"] == 4 and out["DDIM@50"]["change"] == pytest.approx(0.25)
    low, high = out["DDIM@50"]["ci95"]
    assert low < 0.25 < high


def test_paired_change_refuses_different_pairs_and_names_the_fix(ev) -> None:
    with pytest.raises(SystemExit, match="same --seed"):
        ev.paired_changes(_report(5000, [1]), _report(6000, [1]))


def test_convergence_study_reads_every_region_on_the_embedded_model(ev) -> None:
    pipe = ev.load(ROOT / "fixtures" / "tiny-shapes")
    prompts = ev.dataset.sample(5000, 2).captions
    study = ev.convergence_study(pipe, prompts, [5000, 5001], batch=2)
    assert set(study["steps_by_guidance"]) == {"guidance 1", "guidance 3", "guidance 7.5", "guidance 12"}
    for row in study["steps_by_guidance"].values():
        assert all(0.0 <= r["mean_ssim"] <= 1.0 for r in row.values())
    assert study["refined_regions"]["t 700-999 refined"]["steps"] > 20
    rms = study["x0_at_t999_rms"]
    # guidance extrapolates past the conditional prediction, so its RMS must exceed it
    assert rms["guided_7.5"] > rms["cond"] > 0
