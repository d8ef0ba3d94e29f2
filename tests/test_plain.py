"""Plain sentences: generated from each verdict's own numbers, one per claim, at the top of its section and in the
summary table."""
from __future__ import annotations

from pathlib import Path

from report_fixtures import sample_results
from sampler_claims import plain, registry
from sampler_claims.report import write_report
from sampler_claims.verdict import all_of, at_least, equivalent, exact, paired, wilson


def _scores(mean: float, n: int = 32, seed: int = 0) -> list[float]:
    """n per-seed scores around `mean`, spread 0.06: a synthetic sampler."""
    return [mean + 0.06 * (((k + seed) * 7919) % 13 - 6) / 6 for k in range(n)]


def test_an_undecided_quality_gap_reads_as_wrong_attributes_and_the_seeds_that_settle_it() -> None:
    v = equivalent(paired(_scores(0.85), _scores(0.80, seed=5)), 0.05, "score DDPM@1000 - DPM-Solver@20")
    v = all_of([v, equivalent(paired(_scores(0.85, seed=1), _scores(0.85, seed=1)), 0.05, "score DDPM@1000 - DDIM@50")], "comparable")
    text = plain.sentence(v.verdict, v.reason, v.statements, seeds_needed=v.seeds_needed, kind="statistical")
    assert text.startswith("Not settled: ") and "too close to the ±0.05 margin to call" in text
    per = registry.SCORE_PER_WRONG_ATTRIBUTE
    assert f"about one wrong attribute in {round(per / 0.05)} images" in text
    assert "DDIM@50" not in text  # the confirmed statement did not decide the verdict
    if v.seeds_needed:
        assert f"--seeds {v.seeds_needed}" in text


def test_a_refutation_names_only_what_was_refuted() -> None:
    refuted = at_least(paired(_scores(0.80), _scores(0.78, seed=3)), 0.15, "DDIM@10 - DDPM@10")
    fine = at_least(wilson(30, 32), 0.5, "share of seeds")
    v = all_of([fine.named("most seeds"), refuted.named("much worse")])
    text = plain.sentence(v.verdict, v.reason, v.statements)
    assert text.startswith("Does not hold: much worse: ") and "clearly not at least 0.15" in text and "95% interval" in text
    assert "most seeds" not in text


def test_an_exact_claim_reads_as_its_key_figure_and_a_skip_as_its_reason() -> None:
    v = exact(False, "re-seeded DDPM is pixel-identical: stochastic is not irreproducible")
    assert plain.sentence(v.verdict, v.reason, v.statements, key="DDPM re-seeded: 3/3 identical") == \
        "Does not hold: DDPM re-seeded: 3/3 identical."
    assert plain.sentence("skipped", "the sampler atlas is opt-in: run with --atlas") == \
        "Not measured: the sampler atlas is opt-in."


def test_every_claim_of_the_report_has_its_sentence_in_the_summary_and_its_section(tmp_path: Path) -> None:
    results = sample_results()
    write_report(results, tmp_path / "index.html")
    html = (tmp_path / "index.html").read_text()
    summary, sections = html.split('id="summary"', 1)[1].split("</table>", 1)
    for rec in results.records.values():
        text = plain.for_record(rec)
        assert text and text[0].isupper() and text.endswith(".")
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")
        assert escaped in summary, rec.claim.id
        if rec.outcome == "not run" and not rec.evidence:  # one muted line, not a sentence about nothing
            section = sections.split(f'id="{rec.claim.id}"', 1)[1].split("</section>", 1)[0]
            assert "Not measured in this run." in section, rec.claim.id
        else:
            assert f'<p class="plain">{escaped}</p>' in sections, rec.claim.id


def test_a_statement_named_twice_is_said_once() -> None:
    """Verdict.named over a reason that already names the statement ("5 garbled: 5 steps garbled: ...") reads
    once in the sentence."""
    v = at_least(paired(_scores(0.80), _scores(0.78, seed=3)), 0.15, "5 steps garbled: score@200 - score@5")
    v = all_of([v.named("5 garbled"), at_least(wilson(30, 32), 0.5, "share").named("most seeds")])
    text = plain.sentence(v.verdict, v.reason, v.statements)
    assert text.startswith("Does not hold: 5 steps garbled: score@200 - score@5 was ")
    assert "5 garbled" not in text


def test_a_long_exact_statement_is_cut_between_words_not_inside_a_number() -> None:
    reason = ("the metric failed its control, so it cannot decide: checker score does NOT separate DPM-Solver@200 from "
              "DPM-Solver@5 (DPM-Solver@200 - DPM-Solver@5 = +0.049 [-0.447, +0.544] (n=2), needs the interval above 0)")
    from sampler_claims.verdict import Statement

    text = plain.describe(Statement(reason, "inconclusive"))
    assert text.endswith(" …") and "[-0" not in text and "(DPM" not in text
    assert text.startswith("the metric failed its control")
