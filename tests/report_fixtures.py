"""A Results object filled the way a real run fills it: every evidence kind, every verdict, odd text."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sampler_claims.results import Results


def sample_results(with_evidence: bool = True) -> Results:
    results = Results()
    rng = np.random.default_rng(0)
    ids = list(results.records)
    verdicts = ["confirmed", "refuted", "inconclusive", "skipped"]
    for n, cid in enumerate(ids[:8]):
        rec = results.recorder(cid)
        verdict = verdicts[n % 4]
        # What decide() records, without ending a test (there is none here).
        rec.record.verdict = verdict
        rec.record.reason = f"measured reason <b>{n}</b> & more" if verdict in ("confirmed", "refuted") else \
            f"because {n}"
        rec.key(f"key {n}")
        rec.metric(value=n * 0.5, nested={"a": [1, 2]})
        results.add_outcome(cid, f"claims/test_x.py::test_{n}", "passed")
        if with_evidence:
            imgs = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
            rec.images("three samplers", imgs, ["DDPM <1000>", "DDIM 50", "DPM 20"])
            rec.table("identity", ["pair", "identical"], [["1-2", True], ["1-3", False]])
            rec.series("time vs steps", [5, 10, 20], {"time": [0.1, 0.2, 0.4]}, xlabel="steps", ylabel="s",
                       fit={"a": 0.0, "b": 0.02, "r2": 0.999}, knee=10)
    # One of each errata group beyond the first eight: a refutation on the model, a finding beyond the lesson
    # (refuted and undecided), each with a registry sentence that says "on this model".
    for cid, verdict in (("no-gain-past-25", "refuted"), ("karras-sigmas-few-steps", "refuted"),
                         ("final-sigma-zero", "inconclusive")):
        rec = results.recorder(cid)
        rec.record.verdict, rec.record.reason = verdict, f"{cid} measured otherwise"
        rec.key(f"{cid}: gap +0.1 [+0.05, +0.15]")
        results.add_outcome(cid, f"claims/test_z.py::test_{cid}", "xfailed" if verdict == "refuted" else "skipped")
    big = results.recorder(ids[8])
    big.images("a big image", [rng.integers(0, 255, (512, 512, 3), dtype=np.uint8)], ["512 px"])
    results.add_outcome(ids[9], "claims/test_y.py::test_broken", "failed", "AssertionError: boom")
    results.environment = {"model": "tiny", "model_source": "/home/someone/sampler-claims/fixtures/tiny-shapes",
                           "device": "cpu", "dtype": "float32", "diffusers": "0.42.1", "torch": "2.13.0",
                           "seeds": 32, "seed_base": 0, "started": "2026-01-02T03:04:05+00:00",
                           "prompt": "<script>alert(1)</script>",
                           "plan": {"seeds": 32, "groups": {"roster": {"claims": ["a", "b"], "estimated_s": 1.5}}},
                           "chunk_sizes": {"same-weights": {"1x1": 6, "2x2": 2}}}
    return results


def results_from_claims_json(path: Path) -> Results:
    """A Results object rebuilt from a written claims.json and its evidence PNGs, so that a real run's report can
    be rendered again (for a look at the page, or to measure it) without running the claims."""
    import json

    from PIL import Image

    from sampler_claims.results import Evidence
    from sampler_claims.verdict import Verdict

    path = Path(path)
    data = json.loads(path.read_text())
    results = Results(data["environment"].get("model", "tiny"))
    results.environment = data["environment"]
    for c in data["claims"]:
        if c["id"] not in results.records:
            continue
        rec = results.records[c["id"]]
        rec.tests = c["tests"]
        rec.expected = c.get("expected", rec.expected)
        rec.ran_on = c.get("ran_on") or {}
        rec.metrics = c.get("metrics") or {}
        if c["outcome"] != "not run" or c["tests"]:
            if not (c["verdict"] == "skipped" and c["outcome"] == "not run"):
                rec.verdict, rec.reason = c["verdict"], c["reason"]
                rec.decision = Verdict(c["verdict"], c["reason"], rec.metrics.get("decision") or {},
                                       c.get("seeds_needed"))
        for e in c["evidence"]:
            if e["kind"] == "images":
                images = [np.asarray(Image.open(path.parent / f).convert("RGB")) for f in e["files"]]
                rec.evidence.append(Evidence("images", e["title"], {"images": images, "captions": e["captions"],
                                                                     "per_row": e.get("per_row")}))
            else:
                rec.evidence.append(Evidence(e["kind"], e["title"], {k: v for k, v in e.items()
                                                                      if k not in ("kind", "title")}))
    return results


#: Claim tests that end in each pytest outcome a verdict can take, by name: (the claim it decides, the test's body),
#: for the pytester runs of the report's and the terminal's tests. `outcomes_module(...)` writes the ones a test
#: needs into one test file; "plain" is a test that decides no claim.
OUTCOME_TESTS: dict[str, tuple[str | None, str]] = {
    "confirmed": ("same-weights", 'claim.decide(exact(True, "one hash"))'),
    "refuted_unexpectedly": ("ddim-eta", 'claim.decide(exact(False, "eta ignored"))'),
    "refuted_as_expected": ("clone-needed", 'claim.decide(exact(False, "the pipeline rebinds latents"))'),
    "expected_refuted_but_confirmed": ("cfg-two-passes", 'claim.decide(exact(True, "two passes now"))'),
    "expected_refuted_but_crashed": ("dpm-multi-point", 'raise RuntimeError("not a refutation")'),
    "inconclusive": ("comparable-quality",
                     'claim.decide(Verdict("inconclusive", "straddles the margin", seeds_needed=99))'),
    "plain": (None, "pass"),
}


def outcomes_module(*names: str) -> str:
    """A test file of the named OUTCOME_TESTS, in the order given."""
    parts = ["import pytest\nfrom sampler_claims.verdict import Verdict, exact\n"]
    for name in names:
        claim, body = OUTCOME_TESTS[name]
        if claim is None:
            parts.append(f"def test_{name}():\n    {body}\n")
        else:
            parts.append(f'@pytest.mark.claim("{claim}")\ndef test_{name}(claim):\n    {body}\n')
    return "\n\n".join(parts)
