"""The claims' Python side: the Claim every test, rule, plan and report reads, and the named values the catalogue
refers to.

The claims themselves are data: sampler_claims/catalogue/<section>.toml (read by sampler_claims.catalogue), each
with its runs, its thresholds and its words. What lives here is what must be computed from an argument rather than
written down: the shared margins (the comparable margin is one wrong attribute in five images times the renderer's
measured unit), the quality controls, the convergence reference, the rosters' multiples and the timing rounds'
settings, each a `Threshold` with its argument, which an entry names with { ref = "NAME" }.

Every argument comes from the lesson's words or from the metric's own scale, never from what a model measured on
the claim the margin decides: a margin is never moved to make a model pass. Where a model misses a margin, that is
the finding, and the entry's `expected` records it, so the claim's pytest outcome is an xfail(strict=True) and a
later change of verdict turns the run red (docs/claims.md).

Rules live in `sampler_claims/rules/<exercise>.py`, tests in `claims/test_<exercise>.py`, negative controls in
`tests/test_negative_<exercise>.py`, all under the same claim id.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from .runs import RunSpec
from .verdict import CONFIRMED, REFUTED, VERDICTS, power_z  # noqa: F401 - VERDICTS is re-exported

V = TypeVar("V")

EXERCISES = {"Exercise 1": "exercise1", "Exercise 2": "exercise2", "Exercise 3": "exercise3",
             "Exercise 4": "exercise4", "Takeaways": "takeaways", "Beyond the lesson": "beyond"}


@dataclass(frozen=True)
class Threshold:
    value: Any
    why: str


class Run(NamedTuple):
    """One configuration a claim generates: a scheduler by short name (sampler_claims.schedulers) at `steps`."""

    sampler: str
    steps: int

    @property
    def label(self) -> str:
        """As the report names it, e.g. 'DPM-Solver@200'."""
        from .schedulers import LABELS

        return f"{LABELS[self.sampler]}@{self.steps}"


class Control(NamedTuple):
    """A metric's control: the same sampler at `good` steps (known good) against `bad` steps (known bad),
    paired by seed in the same run. A tuple, so claims.json shows it as [sampler, good, bad]."""

    sampler: str
    good: int
    bad: int

    @property
    def good_run(self) -> Run:
        return Run(self.sampler, self.good)

    @property
    def bad_run(self) -> Run:
        return Run(self.sampler, self.bad)


# ------------------------------------------------------------------------------------------ shared margins
#: Margins several claims share, stated once. The quality score is the tiny world's checker score
#: (sampler_claims.tinyshapes.checker.Scores.score): the mean of the shape's IoU and the colour score, each
#: in [0, 1]. Its scale was calibrated on the world's own renderer, not on any sampler: scoring rendered
#: images against their caption with one attribute swapped drops the score by 0.29 on average (the
#: colour 0.48, the shape 0.10; 200 renders, checker.renderer_drop(); tests/test_tinyshapes.py keeps it so).
#: The quality margins are stated in wrong attributes per image and converted with this scale, so a new
#: world changes their units, never their meaning.
SCORE_PER_WRONG_ATTRIBUTE = 0.29
#: "Comparable": at most one wrong attribute in five images.
COMPARABLE_WRONG_PER_IMAGE = 0.2
#: "Much worse" / "garbled": at least three wrong attributes in five images, three times "comparable".
MUCH_WORSE_WRONG_PER_IMAGE = 0.6
COMPARABLE = Threshold(round(COMPARABLE_WRONG_PER_IMAGE * SCORE_PER_WRONG_ATTRIBUTE, 3),
                       "'comparable' quality: mean checker scores differ by less than the drop of one wrong "
                       f"attribute ({SCORE_PER_WRONG_ATTRIBUTE} on the renderer) in one image in five; stated "
                       "before measuring")
MUCH_WORSE = Threshold(round(MUCH_WORSE_WRONG_PER_IMAGE * SCORE_PER_WRONG_ATTRIBUTE, 3),
                       "'much worse' / 'garbled': a mean score lower by at least one wrong attribute in three "
                       f"images of five ({SCORE_PER_WRONG_ATTRIBUTE} x 0.6), three times the comparable margin")
INDISTINCT_SSIM = Threshold(0.95, "'nearly indistinguishable': SSIM of at least 0.95 between two images of the "
                                  "same seed, the level at which image-compression practice calls two "
                                  "images visually near-identical; also the margin of the embedded model's "
                                  "convergence study (scripts/evaluate_tiny.py)")
QUALITY_CONTROL = Threshold(Control("dpm-solver", 200, 5), "the quality metric decides only after it separates the "
                                                    "converged DPM-Solver@200 (known good) from DPM-Solver@5 "
                                                    "(known bad: the lesson's 'garbled') on the same seeds, "
                                                    "paired, in the same run")

# ------------------------------------------------------------------ CLIP score (Stable Diffusion 1.5's path)
#: The CLIP score's scale, per CLIP, in the checker's units: the CLIP-score drop (0..100 scale) of one
#: attribute wrong. Margins on the CLIP path are the checker's margins counted in wrong attributes per
#: image (COMPARABLE_WRONG_PER_IMAGE, MUCH_WORSE_WRONG_PER_IMAGE) times this drop
#: (quality.Quality.margin), so no CLIP margin looks at a sampler's output.
#: - tiny-clip (fixtures/tiny-clip/): calibrated like SCORE_PER_WRONG_ATTRIBUTE, on the world's renderer and
#:   nothing else: 200 rendered images scored against their caption and against it with one attribute
#:   swapped (sampler_claims.clip.renderer_drop): own caption 95.2, one attribute wrong drops it by 56.4 on
#:   average (shape 48.4, colour 64.4); tests/test_clip.py keeps it so.
#: - openai/clip-vit-base-patch16 (SD 1.5, the HF guide's CLIP): no renderer of SD 1.5's world exists, so the
#:   value is argued from the metric's scale: matched caption-image pairs score ~30-35 with ViT-B CLIP, unrelated
#:   pairs ~15-20 (cosine 0.15-0.2), so a wholly wrong prompt costs ~15 points; the lesson's prompts name about
#:   four to six content attributes, so one wrong attribute costs ~15/6 = 2.5 points. Stated before measuring;
#:   a GPU run can test it with the same swapped-prompt calibration on SD 1.5's own prompts.
#: Any other CLIP is taken to share ViT-B's scale (the openai CLIPs do, within a few points).
CLIP_PER_WRONG_ATTRIBUTE: dict[str, float] = {"tiny-clip": 56.4, "openai/clip-vit-base-patch16": 2.5}
CLIP_DEFAULT_SCALE = 2.5


def clip_scale(clip_name: str) -> float:
    """The CLIP-score drop of one wrong attribute for this CLIP (its folder name or hub id)."""
    return CLIP_PER_WRONG_ATTRIBUTE.get(clip_name, CLIP_DEFAULT_SCALE)


CLIP_CONTROL = Threshold(Control("dpm-solver", 20, 5), "on the CLIP path the score decides only after it separates "
                                                       "DPM-Solver@20 (the lesson's 'good') from DPM-Solver@5 (its "
                                                       "'garbled') on the same seeds in the same run: a tighter "
                                                       "control than 200 against 5")

# ------------------------------------------------- convergence to a reference (the CLIP path's second metric)
CONVERGENCE_REFERENCE = Threshold(
    Run("dpm-solver", 200),
    "the converged solution of the ODE samplers (same z_T) is DPM-Solver++ at 200 steps: the DPM-Solver++ paper "
    "measures convergence on Stable Diffusion against a high-step solution; DPM-Solver++ is a second-order "
    "multistep solver, so at 200 steps (h ~ 1/200 of the log-SNR range) its discretisation error is ~(5/200)^2 = "
    "1/1600 of the 5-step error, far below any difference the claims compare; it is already on the roster "
    "(the sweet-spot grid), so it costs nothing extra")
CONVERGED_RATIO = Threshold(
    0.05,
    "the reference is converged when, paired by seed, its RMS latent distance to the coarser DPM-Solver++@100 is "
    "at most 1/20 of its distance to DPM-Solver++@5 (95% interval at or under 0.05). Second-order error ~h^2 "
    "predicts (5/100)^2 = 1/400; the bound allows 20x for the first-order final step and guidance. A reference "
    "that fails it (e.g. DPM-Solver++@10 posing as one) makes every statement against it inconclusive")
REFERENCE_CHECK = Threshold(
    Control("dpm-solver", 100, 5),
    "what the reference's own check (converged_ratio) compares it with: the coarser DPM-Solver++@100 (near) and the "
    "known-bad DPM-Solver++@5 (far), paired by seed")
CONVERGENCE_CONTROL = Threshold(
    Control("dpm-solver", 20, 5),
    "latent MSE to the reference counts only after it separates DPM-Solver@20 from DPM-Solver@5 (20 closer), "
    "paired by seed, in the same run")

#: What every quality claim reads (its metric's control on each path), and what every claim that compares with the
#: converged reference reads, so that the session runs exactly what these entries say.
QUALITY = {"quality_control": QUALITY_CONTROL, "clip_control": CLIP_CONTROL}
CONVERGENCE = {"convergence_reference": CONVERGENCE_REFERENCE, "converged_ratio": CONVERGED_RATIO,
               "reference_check": REFERENCE_CHECK, "convergence_control": CONVERGENCE_CONTROL}

#: How the default --seeds was sized (power, not hope). An equivalence at margin m is confirmed with
#: verdict.POWER (80%) at a true paired difference delta when n = ((z_0.975 + z_0.8) * sd / (m - |delta|))^2
#: = (2.80 * sd / (m - |delta|))^2 (verdict.power_z), with m the comparable margin (COMPARABLE). A pilot on the
#: first embedded model (32 prompt-seed pairs) measured the sd of paired score differences: 0.045-0.06 between the
#: deterministic samplers (DDIM, DPM-Solver at 20-200 steps: they share z_T and land close), 0.14-0.28 for pairs
#: with a DPM-Solver at 5-10 steps, and 0.16-0.23 for any pair with stochastic DDPM (independent paths: pairing
#: barely helps). The seeds each kind of pair needs follow from these (power_seeds): at the current margin
#: about a dozen for deterministic pairs and over a hundred for pairs with DDPM (DDPM@1000 over that many seeds
#: is ~10 min on one CPU thread). The default, 32 seeds, decides the deterministic comparisons with margin to
#: spare; the claims that pair with DDPM run on DDPM_SEEDS times the roster (below), and where one is still left
#: inconclusive the report names the --seeds that would decide it. A GPU run can afford more.
SEEDS_PILOT: dict[str, tuple[float, float]] = {"deterministic": (0.058, 0.01), "stochastic": (0.22, 0.0)}

#: The claims whose deciding comparison pairs a sampler with stochastic DDPM run on a roster this many times
#: --seeds (the first --seeds pairs are the shared roster, so only the rest is generated again). Pairing by seed
#: cannot absorb DDPM's independent per-step noise: a DDPM image that fails lands on one seed at random, and a
#: failed image costs far more of the score than the spread between good ones, so these differences are
#: heavy-tailed and need more seeds than the normal power formula above says. Sized by resampling held-out
#: pairs, not the roster: the embedded model's held-out prompt-seed pairs (the 128 of fixtures/tiny-shapes/
#: quality.json and the 256 of history/stage5_gate.json, DDPM@1000, DDIM@50 and DPM-Solver@20 per pair) drawn
#: 4,000 times at n seeds decide comparable-quality (all three paired differences inside or one outside the
#: comparable margin) as often as the threshold's reason says (tests/test_registry_runs.py keeps it so). The target
#: is 95%: 1.5x falls short of it, so 2x.
DDPM_SEEDS = Threshold(2, "pairs with stochastic DDPM run on 2x the --seeds roster: resampled from 384 held-out "
                          "pairs, 32 seeds decide comparable-quality in 89% of draws, 48 in 92%, 64 in 98%")


#: sweet-spot's checker-score statements (5, 10 and 20 steps against the converged 200) run on a roster this many
#: times --seeds; its SSIM statements stay on the roster. A few-step image either reads right or fails, so the
#: 5-step gap is heavy-tailed as DDPM's differences are (per-pair sd 0.129 on held-out pairs against a distance to
#: the garbled margin of 0.04). Sized as DDPM_SEEDS is, by resampling the embedded model's held-out prompt-seed
#: pairs (the 128 of quality.json and the 256 of history/stage5_dpm5_heldout.json, DPM-Solver++@5 against @200),
#: to the power --seeds is sized for (verdict.POWER); tests/test_registry_runs.py keeps it so. The extra seeds
#: cost DPM-Solver@5, @10, @20 and @200 only (@20 shares the DDPM-paired roster's first 2x).
SCORE_SEEDS = Threshold(4, "sweet-spot's checker-score statements run on 4x the --seeds roster: resampled from 384 "
                           "held-out pairs, the 5-step gap is decided in 38% of draws at 32 seeds, 80% at 96 (a "
                           "hair under the suite's 80% power) and 89% at 128")

#: The thresholds that put a claim's generations on a longer roster, as a multiple of --seeds: all of a claim's
#: that pairs with DDPM, or sweet-spot's scored step counts. A claim names at most one.
LONGER_ROSTER = ("ddpm_seeds", "score_seeds")


def claim_seeds(claim: "Claim", seeds: int) -> int:
    """The longer roster a statistical claim runs its deciding generations on: --seeds times its DDPM_SEEDS or
    SCORE_SEEDS, else --seeds. Its first --seeds pairs are the shared roster's."""
    return seeds * next((claim.t(key, int) for key in LONGER_ROSTER if key in claim.thresholds), 1)


def seeds_option(claim: "Claim", needed: int) -> int:
    """The --seeds value that gives a claim `needed` seeds on its longer roster (claim_seeds: fewer --seeds)."""
    return math.ceil(needed / (claim_seeds(claim, 1)))


def power_seeds(kind: str) -> int:
    """Seeds that decide an equivalence at the comparable margin with verdict.POWER, for a kind of pair."""
    sd, delta = SEEDS_PILOT[kind]
    return math.ceil((power_z() * sd / (COMPARABLE.value - abs(delta))) ** 2)


SEEDS_POWER = (f"n = ({power_z():.2f} * sd / (margin - |delta|))^2; pilot sd of paired score differences: "
               + ", ".join(f"{sd} for {kind} pairs (-> {power_seeds(kind)} seeds at delta {delta})"
                           for kind, (sd, delta) in SEEDS_PILOT.items()) + "; default 32")


# ------------------------------------------------------------------------------------------ timing rounds
#: How wide each timing claim's 95% interval may be, and the per-round spread to size the rounds for, from which
#: the rounds follow (sampler_claims.verdict.rounds_needed: the fewest n with t(0.975, n-1) * sd / sqrt(n) <= width).
#: The width is half of the claim's own margin, whatever the claim measures: an interval half as wide as the
#: band decides every value in the band's middle half (and every value as far outside), so only values near
#: an edge can stay undecided. The spread is the largest per-round sd of eight runs of the whole suite on fresh
#: clones, on the 2-core machine CI and a user's `pytest claims/` run on: three CI runs (tests/ and claims/ in one
#: process) and five claims-only runs, one beside a busy loop. The first pilot (six rounds on a quiet machine)
#: had found a third of the speed-up's largest spread, and sized for it, 3 rounds left the speed-up undecided in
#: two of three CI runs (its spread between runs is noise of the virtual machine, CPU time included: no other
#: thread of the process runs during the rounds). A machine busier still widens the intervals, and a claim may
#: then stay undecided, which is what noise may do, never flip it.
TIMING_WIDTHS: dict[str, dict[str, Any]] = {
    "speedup": {"half_width": round(math.log(math.sqrt(50 / 20)) / 2, 4), "pilot_sd": 0.167,
                "why": "log time ratio to DDPM@1000: half of ln(about_factor), the band's half-width on the log "
                       "scale; sd of the per-round log ratio 0.034-0.167 over the eight runs (DPM-Solver@20; "
                       "DDIM@50 up to 0.063), the largest taken"},
    "linear-time": {"half_width": 0.25 / 2, "pilot_sd": 0.069,
                    "why": "intercept / t(20): half of max_overhead_share; sd 0.007-0.069 over the eight runs "
                           "(relative-error fit), the largest taken"},
    "recommended-default": {"half_width": 0.10 / 2, "pilot_sd": 0.0037,
                            "why": "time / DDPM@1000 time: half of max_time_share; sd 0.0005-0.0037 over the "
                                   "eight runs, the largest taken"},
}
#: How the timing rounds are sized (sampler_claims.timing), stated once and shared by the four timing claims (the
#: rounds are shared: one DDPM@1000 timing per round serves all).
TIMING = {
    "timing_rounds": Threshold(5, "the fewest rounds that give every timing claim the interval width it needs at "
                                  "the largest spread fresh-clone runs measured (TIMING_WIDTHS): speed-up 5 (+-0.21 "
                                  "on the log ratio against the +-0.23 it needs), linear-time 4, recommended-default "
                                  "2. --timing-rounds overrides it"),
    "min_time_s": Threshold(0.3, "each measurement of a configuration repeats its call until it lasts 0.3 s (the "
                                 "first call sets the count, pytest-benchmark's estimate): three calls of DPM-Solver@20 "
                                 "(speed-up's denominator, ~0.1 s on the embedded model on a quiet machine), so that "
                                 "the median ignores one call a neighbour stretched. Not more: in the pilot a second "
                                 "of calls left the ratios' spread where one call had it (the spread is drift "
                                 "between a round's calls, which the split of each configuration's calls around "
                                 "DDPM@1000 addresses instead), and every 0.1 s more costs 5 rounds x 7 short "
                                 "configurations = 3.5 s, where DDPM@1000 is already two thirds of a round"),
    "round_statistic": Threshold("median", "the round keeps the median of its repetitions: one call a neighbour "
                                           "stretched (CPU time too, on a virtual machine) does not move it, as it "
                                           "would move a mean; the minimum would hide a slow-down that hits every "
                                           "call"),
}


@dataclass(frozen=True)
class Claim:
    id: str
    exercise: str
    lesson: str
    measure: str
    lead: str = ""
    #: exact (identity, counts: no interval), statistical (seeds), or timing (rounds).
    kind: str = "exact"
    #: Quality claims need a trained model: on random weights they are skipped.
    needs_trained_model: bool = False
    thresholds: dict[str, Threshold] = field(default_factory=dict)
    #: The verdict this suite measured and expects, by model kind ("*" for every model). Where it is
    #: "refuted" the claim's test is xfail(strict=True): a change to "confirmed" turns the run red.
    expected: dict[str, str] = field(default_factory=dict)
    #: Why the expectation is what it is (shown as the xfail reason).
    expected_why: str = ""
    #: What to write instead where this run refutes the statement (the errata page, sampler_claims.errata): the
    #: lesson's sentence made true to what was measured, kept short enough to paste into the lesson.
    corrected: str = ""
    #: The xdist group it runs in (pytest -n N): claims that share generations or the timing rounds run on
    #: one worker, so each is computed once. Default: "timing" for timing claims, "roster" for statistical
    #: ones (they share the --seeds roster), the exercise for exact ones (their module fixtures). The three
    #: claims that read DDPM@1000 over the roster form "roster-ddpm": that one generation is ~half the serial
    #: run, so it gets a worker of its own; the quality control (DPM-Solver@200 and @5) and DPM-Solver@20
    #: are then generated on both workers, a measured trade (README, xdist).
    group_override: str = ""
    #: What a verdict on this claim is a finding about: "diffusers" (a fact of diffusers' API or of the sampler's
    #: algorithm, which holds on any model: calls, draws, identity, errors) or "model" (measured on the model and
    #: device of the run: quality, convergence, time). The errata groups refutations by it.
    scope: str = "model"
    #: The rule that decides it: a function of sampler_claims/rules/<module>.py, by name.
    rule: str = ""
    #: The generations it declares, by name (sampler_claims.runs): its test asks for them, the plan counts them.
    runs: dict[str, RunSpec] = field(default_factory=dict)
    #: The shared sets of thresholds it takes whole (threshold_sets).
    uses: tuple[str, ...] = ()
    #: What a --claims-file changed: (what, name, built-in value, new value), shown beside the entry.
    overrides: tuple[tuple[str, str, Any, Any], ...] = ()
    #: The catalogue file(s) it was read from.
    source: str = ""

    def run(self, name: str) -> RunSpec:
        """One of the claim's declared runs; an unknown name raises KeyError listing the runs it has."""
        try:
            return self.runs[name]
        except KeyError:
            raise KeyError(f"claim {self.id!r} has no run {name!r}; it has: {', '.join(self.runs) or 'none'}") from None

    @property
    def group(self) -> str:
        if self.group_override:
            return self.group_override
        return {"timing": "timing", "statistical": "roster"}.get(self.kind, self.module)

    def t(self, name: str, kind: type[V] | None = None) -> V:
        """The value of one of this claim's thresholds: the one accessor every rule, fixture and the timing read
        numbers, step counts, samplers and grids through. An unknown name raises KeyError listing the names
        this claim has (at import, for a module that reads it there); `kind` checks the value's type."""
        try:
            value = self.thresholds[name].value
        except KeyError:
            raise KeyError(f"claim {self.id!r} has no threshold {name!r}; it has: "
                           f"{', '.join(self.thresholds) or 'none'}") from None
        if kind is not None and not isinstance(value, kind):
            raise TypeError(f"claim {self.id!r}: threshold {name!r} is {value!r}, not a {kind.__name__}")
        return value

    def expects(self, model_kind: str) -> str:
        return self.expected.get(model_kind, self.expected.get("*", CONFIRMED))

    @property
    def single_role(self) -> str:
        """The prompt-table entry its single-seed runs take (sampler_claims.prompts): its exercise's own, Exercise
        1's for the takeaways and the claims beyond the lesson. Two claims' single-seed runs share a generation
        only when their roles match."""
        return self.module if self.module.startswith("exercise") else "exercise1"

    @property
    def module(self) -> str:
        """Where the claim lives: sampler_claims/rules/<module>.py, claims/test_<module>.py."""
        return EXERCISES[self.exercise]


def references() -> dict[str, Threshold]:
    """The named values a catalogue entry may refer to ({ ref = "NAME" }): every module-level Threshold here, each
    computed from its argument in Python (the comparable margin from the renderer's unit, for one)."""
    return {name: value for name, value in globals().items() if isinstance(value, Threshold) and name.isupper()}


def threshold_sets() -> dict[str, dict[str, Threshold]]:
    """The shared sets of thresholds a claim takes whole (`uses = [...]`): stated once, read by every claim that
    uses them (the timing rounds' settings in one place: editing them changes every timing claim)."""
    return {"quality": QUALITY, "convergence": CONVERGENCE, "timing": TIMING}


def decode_value(value: Any) -> Any:
    """A threshold's value as the catalogue writes it, as the rules read it: arrays become tuples, a table with
    sampler, good and bad a Control, a table with sampler and steps a Run."""
    if isinstance(value, list):
        return tuple(decode_value(v) for v in value)
    if isinstance(value, dict):
        if set(value) == {"sampler", "good", "bad"}:
            return Control(value["sampler"], int(value["good"]), int(value["bad"]))
        if set(value) == {"sampler", "steps"}:
            return Run(value["sampler"], int(value["steps"]))
        return {k: decode_value(v) for k, v in value.items()}
    return value


def use_files(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Read the catalogue again with the user's --claims-file files after the built-in ones; CLAIMS is updated in
    place (every module holds the same dict). Returns the files read."""
    from . import catalogue

    fresh = catalogue.load(tuple(extra))
    CLAIMS.clear()
    CLAIMS.update(fresh)
    global FILES
    FILES = catalogue.files(tuple(extra))
    return FILES


def _load() -> dict[str, Claim]:
    from . import catalogue

    return catalogue.load()


#: Every claim, read from the catalogue's data files (sampler_claims/catalogue/*.toml).
CLAIMS: dict[str, Claim] = _load()
#: The files the catalogue was read from (the header and the report name them).
FILES: list[str] = __import__("sampler_claims.catalogue", fromlist=["files"]).files()


def get(claim_id: str) -> Claim:
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim id {claim_id!r}; known: {', '.join(CLAIMS)}") from None
