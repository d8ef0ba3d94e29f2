"""One edit in the catalogue reaches everything that follows from a claim: changing comparable-quality's DDIM@50 to
DDIM@40, in a file given as --claims-file gives it, changes the request its test makes, the plan's count and the
words of its report and verdict. Nothing here runs a model."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from negative_support import scores, shifted
from sampler_claims import catalogue, paths, plan, registry
from sampler_claims.claim_runs import ClaimRuns
from sampler_claims.prompts import Prompts
from sampler_claims.quality_claim import Judge
from sampler_claims.rules.exercise1 import decide_comparable_quality, labels
from sampler_claims.verdict import separation

CLAIM = "comparable-quality"
#: The edit, as a user writes it: the run keeps its name and its seeds, only its step count changes.
RUN = "ddim"
EDIT = f'[[claim]]\nid = "{CLAIM}"\n[claim.runs]\n{RUN} = {{ sampler = "ddim", steps = 40, seeds = "claim" }}\n'


@pytest.fixture
def edited(tmp_path: Path) -> Iterator[Path]:
    """The edit in a claims file, read into the registry for the test (as --claims-file does), then undone."""
    path = tmp_path / "ddim-40.toml"
    path.write_text(EDIT)
    registry.use_files([str(path)])
    try:
        yield path
    finally:
        registry.use_files([])


def _request_steps(claim: registry.Claim) -> dict[str, int]:
    runs = ClaimRuns(claim, engine=None, prompts=Prompts(tiny_world=True), seeds=4)  # type: ignore[arg-type]
    return {n: runs.request(n).steps for n in claim.runs}


def _plan(seeds: int = 4) -> int:
    return plan.make_plan([CLAIM], seeds=seeds, model_source=str(paths.TINY_MODEL), quality="checker",
                          rounds=2).per_claim[CLAIM]


def _verdict_reason(claim: registry.Claim) -> str:
    base = scores(0.85)
    gens = {label: shifted(base, 0.0, seed=k) for k, label in enumerate(labels(claim.runs).values())}
    control = separation("score", scores(0.85), scores(0.55, seed=9), "good", "bad")
    return decide_comparable_quality(Judge("checker score", list, control, lambda m: m, claim.t), gens).reason


def test_editing_ddim_50_to_40_reaches_the_request_the_plan_and_the_words(edited: Path) -> None:
    built_in = catalogue.load()[CLAIM]
    claim = registry.get(CLAIM)
    name = RUN
    # what the test generates: the run it asks for by name
    assert _request_steps(built_in)[name] == 50 and _request_steps(claim)[name] == 40
    # the plan: 2 x 4 seeds (comparable-quality pairs with DDPM on twice the roster), CFG doubles, 10 steps fewer
    edited_plan = _plan()
    registry.use_files([])
    assert _plan() - edited_plan == 2 * 4 * 2 * 10
    # the report's words: the labels and the verdict's reason name DDIM@40, not DDIM@50
    assert "DDIM@40" in labels(claim.runs).values() and "DDIM@50" not in labels(claim.runs).values()
    assert "DDIM@40" in _verdict_reason(claim) and "DDIM@50" not in _verdict_reason(claim)
    assert "DDIM@50" in _verdict_reason(built_in)
    # and the override is shown beside the built-in value
    assert ("run", name, "DDIM@50", "DDIM@40") in claim.overrides and str(edited) in claim.source
