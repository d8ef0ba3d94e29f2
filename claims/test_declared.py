"""Claims a --claims-file adds, of a rule kind that has a generic test (sampler_claims.catalogue.GENERIC_RULES): each
runs here from its catalogue entry alone (its runs, its margin, its words), with the quality metric's control and
the one decision every quality claim goes through. With no such file this module collects nothing.
"""
from __future__ import annotations

import pytest

from sampler_claims import registry
from sampler_claims.catalogue import built_in
from sampler_claims.rules import rule_of
from sampler_claims.rules.exercise1 import margin_position, pairwise_differences

DECLARED = [cid for cid, c in registry.CLAIMS.items() if not built_in(c)]


if DECLARED:  # without a --claims-file that adds claims, nothing to collect (not an empty parameter set: a skip)
    @pytest.mark.parametrize("claim_id", [pytest.param(cid, marks=pytest.mark.claim(cid), id=cid) for cid in DECLARED])
    def test_declared_claim(claim_id: str, request: pytest.FixtureRequest) -> None:
        claim = request.getfixturevalue("claim")
        q = request.getfixturevalue("quality_claim")
        runs = request.getfixturevalue("runs")
        gens = {runs[name].label: runs.generate(name) for name in claim.claim.runs}
        margin = q.margin("comparable_margin")

        def rule(judge):  # noqa: ANN001, ANN202 - the rule kind the entry names
            return rule_of(claim.claim)({label: judge.scores(g) for label, g in gens.items()}, judge.control,
                                        margin=judge.margin("comparable_margin"), missing=judge.missing)

        q.decide_if_no_metric(rule)
        diffs = pairwise_differences({label: q.scores(g) for label, g in gens.items()})
        n = len(next(iter(gens.values())).request.seeds)
        claim.table(f"{q.metric} over {n} seeds, paired by seed (95% intervals)",
                    ["pair", "mean difference", "95% interval", f"margin ±{margin:g}"],
                    [[p.replace("|", " − "), round(iv.mean, 4), f"[{iv.low:.4f}, {iv.high:.4f}]",
                      margin_position(iv, margin)] for p, iv in diffs.items()])
        claim.images("The declared runs on the first seed", [g.image(0) for g in gens.values()], list(gens))
        q.decide(rule, {"comparable": "comparable_margin"})
