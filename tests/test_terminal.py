"""What the terminal shows: each claim test's verdict as its status, progress text that never overwrites or sticks
to pytest's own output, timing calls folded per round, an expected failure told as expected, advice that is true
for one seed."""
from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from _pytest._io import TerminalWriter

from report_fixtures import outcomes_module

from sampler_claims.outcomes import shown_verdict
from sampler_claims.progress import Progress, TerminalSink, finished_line, plural
from sampler_claims.verdict import at_least, equivalent, improves, t_interval

OUTCOMES = outcomes_module("confirmed", "refuted_as_expected", "inconclusive", "plain")


@pytest.mark.parametrize("flag", ["-v", "-q"])
def test_each_claim_test_shows_its_verdict(pytester: pytest.Pytester, dummy_folder, flag: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")  # room for the whole reason after the word
    pytester.makepyfile(test_claims=OUTCOMES)
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--model", str(dummy_folder), flag,
                                           "--claims-report", str(pytester.path / "r" / "index.html"))
    assert result.ret == 0  # the outcomes are pytest's own: passed, xfailed, skipped
    result.stdout.fnmatch_lines(["*2 passed, 1 skipped, 1 xfailed*"])
    out = result.stdout.str()
    if flag == "-v":
        result.stdout.fnmatch_lines(["*::test_confirmed CONFIRMED*", "*::test_refuted_as_expected REFUTED (the "
                                     "pipeline rebinds latents)*", "*::test_inconclusive INCONCLUSIVE (straddles*",
                                     "*::test_plain PASSED*"])
        assert "refuted, as measured before" not in out and "(inconclusive:" not in out
    else:
        result.stdout.fnmatch_lines(["CRI.*"])


def test_a_verdict_shows_only_where_the_outcome_carries_it() -> None:
    assert shown_verdict("passed", "confirmed") == "confirmed"
    assert shown_verdict("xfailed", "refuted") == "refuted"
    assert shown_verdict("failed", "refuted") == "refuted"
    assert shown_verdict("skipped", "inconclusive") == "inconclusive"
    assert shown_verdict("failed", None) is None  # a crash keeps pytest's FAILED
    assert shown_verdict("skipped", "skipped") is None
    assert shown_verdict("passed", None) is None


def _reporter(tty: bool, width: int = 80) -> SimpleNamespace:
    buf = io.StringIO()
    tw = TerminalWriter(buf)
    tw.fullwidth = width
    rep = SimpleNamespace(_tw=tw, isatty=tty, buf=buf, currentfspath=None)
    rep.write = lambda text, **kw: tw.write(text, **kw)
    rep.ensure_newline = lambda: None
    rep.write_line = lambda text, **kw: tw.line(text, **kw)
    return rep


def test_on_a_terminal_the_live_text_follows_the_letters_and_is_erased() -> None:
    rep = _reporter(tty=True)
    rep._tw.write("..x")
    sink = TerminalSink(rep)
    sink("claim: DDIM @ 50 steps, seed 1: step 3/50", False)
    assert rep._tw.width_of_current_line == 3  # pytest's column count is left as pytest wrote it
    sink("claim: DDIM @ 50 steps, seed 1: step 9/50", False)
    sink("claim: DDIM @ 50 steps, seed 1: 50/50 steps", True)
    screen = _render(rep.buf.getvalue())
    assert screen == "..x"  # the letters intact, the live text gone
    assert sink._live == 0


def test_the_live_text_is_cut_to_the_room_left() -> None:
    rep = _reporter(tty=True, width=40)
    rep._tw.write("." * 10)
    sink = TerminalSink(rep)
    sink("x" * 100, False)
    assert len(_render(rep.buf.getvalue())) <= 40


def test_in_a_log_a_finished_line_never_sticks_to_the_letters() -> None:
    rep = _reporter(tty=False)
    rep._tw.write("s")
    TerminalSink(rep)("final-sigma-zero: DPM @ 5 steps: 5/5 steps", True)
    rep._tw.write(".")
    assert rep.buf.getvalue() == "s\nfinal-sigma-zero: DPM @ 5 steps: 5/5 steps\n."
    rep = _reporter(tty=False)
    finished_line(rep, "a line")
    assert rep.buf.getvalue() == "a line\n"  # no blank line when the current line is empty


def _render(raw: str) -> str:
    """What a terminal shows on the last line after backspaces overwrite."""
    line: list[str] = []
    col = 0
    for ch in raw.rsplit("\n", 1)[-1]:
        if ch == "\b":
            col = max(col - 1, 0)
            continue
        if col < len(line):
            line[col] = ch
        else:
            line.append(ch)
        col += 1
    return "".join(line).rstrip()


class Req(SimpleNamespace):
    pass


def _req(label: str = "DPM-Solver @ 5 steps", seeds: tuple[int, ...] = (42,)) -> Req:
    return Req(label=label, seeds=seeds, steps=5)


def test_generations_in_a_fold_give_one_line() -> None:
    seen: list[tuple[str, bool]] = []
    p = Progress(lambda text, final: seen.append((text, final)), live=False)
    p.context = "speedup"
    with p.folded("timing round 2/5"):
        for _ in range(24):
            line = p.begin(_req())
            line.step(0, 1, 5, 5)
            line.end(SimpleNamespace(chunks=[1]))
    finals = [t for t, final in seen if final]
    assert len(finals) == 1 and finals[0].startswith("speedup: timing round 2/5: 24 generations, ")


def test_an_expected_failure_is_told_as_expected() -> None:
    seen: list[str] = []
    p = Progress(lambda text, final: seen.append(text), live=False)
    p.context = "lesson-code-runs"
    with p.expecting_failure("the stock config meets t=1000", IndexError):
        p.begin(_req("DDPM @ 1000 steps")).abort(IndexError("index 1000 is out of bounds"))
    p.begin(_req("DDPM @ 1000 steps")).abort(RuntimeError("boom"))
    assert "failed at step 0/5 with IndexError, as expected (the stock config meets t=1000)" in seen[0]
    assert "stopped at step 0/5" in seen[1] and "RuntimeError" in seen[1] and "expected" not in seen[1]


def test_one_seed_gets_the_advice_to_run_more_not_the_margin() -> None:
    one = t_interval([0.3])
    for v in (equivalent(one, 0.5, "d"), at_least(one, 0.2, "d"), improves(one, "d")):
        assert v.verdict == "inconclusive" and v.seeds_needed is None
        assert "one seed gives no spread" in v.reason and "--seeds" in v.reason
        assert "sits on the margin" not in v.reason


def test_counts_of_one_are_singular() -> None:
    assert plural(1, "seed") == "1 seed" and plural(2, "seed") == "2 seeds" and plural(0, "image") == "0 images"
