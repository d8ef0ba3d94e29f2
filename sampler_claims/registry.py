"""One registry of every claim the lesson makes: its id, exercise, the lesson's words, its margins and
what this suite expects to measure on each model.

Margins live here, once, each with the argument for its value. Every argument comes from the lesson's
words or from the metric's own scale, never from what a model measured on the claim the margin
decides (CLAIMS.md: "a margin is never moved to make a model pass"). Where a model misses a margin,
that is the finding, and `expected` records it, so that the pytest outcome of the claim is an
`xfail(strict=True)` and a later change of verdict turns the run red.

Rules live in `sampler_claims/rules/<exercise>.py`, tests in `claims/test_<exercise>.py`, negative
controls in `tests/test_negative_<exercise>.py`, all under the same claim id.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, TypeVar

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
SEEDS_PILOT: dict[str, tuple[float, float]] = {"deterministic": (0.058, 0.01), "ddpm": (0.22, 0.0)}

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
    lead: str
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
    def module(self) -> str:
        """Where the claim lives: sampler_claims/rules/<module>.py, claims/test_<module>.py."""
        return EXERCISES[self.exercise]


def _claims() -> list[Claim]:
    T = Threshold
    refuted_always = {"*": REFUTED}
    return [
        # ---------------- Exercise 1 ----------------
        Claim(
            "same-weights", "Exercise 1",
            "swapping the scheduler is one line: no retraining, same weights",
            "SHA-256 of the U-Net state dict before any run, after each scheduler swap and after sampling",
            "confirmed",
            corrected="Swapping the scheduler is one line, but on this setup the U-Net's weights changed with "
                      "it: hash the weights before and after a swap before saying 'same weights'.",
        ),
        Claim(
            "lesson-code-runs", "Exercise 1",
            "DDPM at 1000 steps straight from the model's stock scheduler config",
            "DDPMScheduler.from_config(stock) at 1000 steps; then the same with timestep_spacing='trailing'",
            "refuted: SD 1.5's steps_offset=1 with 'leading' spacing gives t=1000 and an IndexError (#10003)",
            corrected='Before running DDPM at 1000 steps, load the scheduler with timestep_spacing="trailing": '
                      "SD 1.5's stock config ('leading' spacing with steps_offset=1) starts at t=1000 and "
                      "raises an IndexError (diffusers #10003).",
            expected=refuted_always,
            expected_why="DDPMScheduler.from_config(SD 1.5's stock config) at 1000 steps starts at t=1000 and "
                         "raises IndexError (diffusers #10003); any other error is a failure, not this finding",
        ),
        Claim(
            "comparable-quality", "Exercise 1",
            "DDPM@1000, DDIM@50 and DPM-Solver@20 give comparable quality",
            "checker score per image, paired by seed (same z_T and prompt) for each pair of samplers; the 95% "
            "interval of each paired difference against the comparable margin",
            "likely confirmed",
            corrected="DDPM@1000, DDIM@50 and DPM-Solver@20 do not give comparable quality on every model: on "
                      "this one at least one of them is measurably worse, so compare them on your model before "
                      "choosing by speed.",
            group_override="roster-ddpm", kind="statistical", needs_trained_model=True,
            thresholds={"comparable_margin": COMPARABLE, "ddpm_seeds": DDPM_SEEDS, **QUALITY, **CONVERGENCE},
        ),
        Claim(
            "different-paths", "Exercise 1",
            "the three images are not identical: the samplers follow different paths",
            "SSIM between pairs on the same seed; per seed, the ODE pair (DDIM, DPM-Solver) minus the closer of "
            "the two pairs with DDPM, with its 95% interval against 0",
            "likely confirmed",
            corrected="The three samplers give different images, but the two ODE samplers (DDIM, DPM-Solver) "
                      "are not measurably closer to each other than to DDPM on this model.",
            group_override="roster-ddpm", kind="statistical",
            thresholds={
                "ddpm_seeds": DDPM_SEEDS,
                "max_identity_ssim": T(0.999, "SSIM at or above this counts as the same image"),
                "ordering_margin": T(0.0, "'follow different paths' as an ordering: the ODE samplers land closer "
                                          "to each other than either does to stochastic DDPM, by any amount "
                                          "the interval can tell from zero"),
            },
        ),
        Claim(
            "speedup", "Exercise 1",
            "DDIM@50 is about 20x faster than DDPM@1000, DPM-Solver@20 about 50x",
            "interleaved rounds of the three samplers (one seed each); per round the time ratio to DDPM@1000, "
            "its 95% interval over rounds (on the log scale); CPU time decides on the CPU, wall time on CUDA",
            "roughly; overhead lowers the ratio",
            corrected="DDIM@50 and DPM-Solver@20 call the U-Net 20x and 50x less often than DDPM@1000; the "
                      "measured speed-up on this device is not about 20x and 50x, because fixed costs per call "
                      "do not shrink with the steps.",
            kind="timing",
            thresholds={
                "lesson_factor": T({"ddim": 20, "dpm-solver": 50}, "the lesson's 'about 20x' (DDIM@50) and "
                                                                   "'about 50x' (DPM-Solver@20) against DDPM@1000"),
                "about_factor": T(round(math.sqrt(50 / 20), 4),
                                  "'about N x' = within a factor sqrt(50/20) = 1.58 of N: the widest band that "
                                  "still tells the lesson's two numbers (20 and 50) apart"),
                **TIMING,
            },
        ),
        Claim(
            "cfg-two-passes", "Exercise 1",
            "with CFG each step costs 2 U-Net forward passes (steps x 2)",
            "forward hook: calls and batch size per call at guidance 7.5 and 1.0; time ratio of the two from the "
            "interleaved timing rounds",
            "one batched call of 2B per step, not two calls; compute doubles, time may not",
            corrected="With classifier-free guidance each step runs one U-Net call on a batch of two (the "
                      "unconditional and the text prompt together): the compute per step doubles, the number of "
                      "calls stays at the number of steps.",
            group_override="timing", thresholds={**TIMING},
            expected=refuted_always,
            expected_why="diffusers' StableDiffusionPipeline concatenates the unconditional and text batches: one "
                         "U-Net call of 2B per step, steps x 1 calls, not steps x 2",
        ),
        # ---------------- Exercise 2 ----------------
        Claim(
            "ddim-deterministic", "Exercise 2",
            "DDIM: same seed gives a pixel-identical image, every time",
            "3 runs, re-seeded each time; np.array_equal on uint8 images and on latents",
            "confirmed on one device and dtype",
            corrected="DDIM with the same seed gives the same image only on the same device, dtype and batch "
                      "shape; on this setup repeated runs differed.",
            thresholds={"runs": T(3, "the lesson's three runs")},
        ),
        Claim(
            "ddpm-stochastic", "Exercise 2",
            "DDPM with a generator seeded once gives different images on each run",
            "3 runs sharing one generator; pairwise identity, mean and max absolute pixel difference",
            "confirmed",
            corrected="DDPM with a generator seeded once gave the same image on every run on this setup: its "
                      "generator did not advance between runs.",
            thresholds={
                "runs": T(3, "the lesson's three runs"),
                "min_mean_abs_diff": T(1.0, "mean |difference| of at least 1/255 per pixel: more than rounding"),
            },
        ),
        Claim(
            "ddim-depends-only-on-zT", "Exercise 2",
            "sigma=0: the DDIM trajectory is fully determined by z_T",
            "same latents= passed in, different generators: DDIM identical, DDPM different",
            "confirmed",
            corrected="On this setup DDIM's output changed with the generator although z_T was fixed: sigma=0 "
                      "alone did not determine the trajectory.",
            thresholds={"min_mean_abs_diff": T(1.0, "as for ddpm-stochastic")},
        ),
        Claim(
            "ddpm-noise-draws", "Exercise 2",
            "DDPM draws fresh noise at every step; each call consumes dozens of draws",
            "count randn_tensor calls per pipeline call: DDPM z_T plus one per step, DDIM(eta=0) z_T only",
            "confirmed; at the last step DDPM's variance is 0 but a draw may still happen",
            corrected="DDPM did not draw fresh noise at every step on this setup: count the random draws of "
                      "your scheduler before relying on it.",
            thresholds={"min_draws": T(24, "'dozens': at least two dozen draws at the lesson's 50 steps")},
        ),
        Claim(
            "ddpm-reproducible-when-reseeded", "Exercise 2",
            "takeaway: DDPM gives 'non-reproducible results'",
            "re-seed before each DDPM run: are the images pixel-identical?",
            "refuted: stochastic is not irreproducible",
            corrected="DDPM is stochastic, not irreproducible: re-seed the generator before each run and it "
                      "gives the same image every time on the same device and dtype.",
            expected=refuted_always,
            expected_why="re-seeded DDPM is pixel-identical on one device and dtype: its per-step noise comes "
                         "from the seeded generator, so stochastic is not irreproducible",
        ),
        Claim(
            "ddim-eta", "Exercise 2",
            "DDIM is deterministic because sigma=0",
            "DDIM with eta=1 and a shared generator gives different images; eta=0 does not",
            "confirmed",
            corrected="DDIM with eta=1 did not change with the generator on this setup, so sigma=0 is not shown "
                      "to be the reason for DDIM's determinism.",
            thresholds={"min_mean_abs_diff": T(1.0, "as for ddpm-stochastic")},
        ),
        Claim(
            "zt-interpolation", "Exercise 2",
            "DDIM's determinism makes it valuable for interpolation in z_T space",
            "the roster's seeds taken two by two (16 pairs at --seeds 32), one prompt per pair: slerp between the "
            "two seeds' z_T over the frames, passed as latents=, one CPU generator per image re-seeded alike for "
            "every frame (so DDPM's fresh "
            "per-step noise is the only difference between the rows); per pair the consecutive-frame distances "
            "(mean |diff| /255); a path is intact when no step exceeds max_jump_ratio x its median step and both "
            "end frames are pixel-identical to the seeds' own images (same sampler, batch shape and prompt). "
            "DDIM(eta=0): ends identical on every pair and the share of smooth pairs (Wilson interval) above "
            "typical_share; DDPM: the share of intact pairs below it",
            "likely confirmed for DDIM; DDPM's path jumps",
            corrected="DDIM's determinism makes interpolation in z_T repeatable (the end frames are the seeds' "
                      "own images, which DDPM cannot give), but on this model the frames in between do not "
                      "always form a smooth path: look for jumps between consecutive frames.",
            kind="statistical", group_override="exercise2",
            thresholds={
                "frames": T(9, "the spec's 'about 9 frames': 8 equal slerp steps from one seed's z_T to the other's"),
                "steps": T(50, "the lesson's Exercise 2 setting: DDIM and DDPM at 50 steps"),
                "max_jump_ratio": T(3.0, "'smooth': no consecutive-frame step more than 3x the path's median step. "
                                         "Slerp moves z_T by equal angles per frame, so a map that is smooth in z_T "
                                         "gives steps of similar size; 3x is the suite's 'much' (MUCH_WORSE is three "
                                         "times COMPARABLE), and over 8 steps one step 3x the median, the rest near "
                                         "it, carries 3/10 of the path in 1/8 of it: a visible cut in a 9-frame "
                                         "strip. Stated before measuring"),
                "typical_share": T(0.5, "the lesson speaks of interpolation in general: it holds when it holds for most "
                                        "pairs (more than half), as for coarse-to-fine"),
            },
        ),
        Claim(
            "ddpm-50-step-count", "Exercise 2",
            "DDPM@50's lower quality 'is about step count, not stochastic vs deterministic'",
            "checker score paired by seed: DDPM@1000 - DDPM@50 (the step-count effect) must be above 0; "
            "DDIM(eta=0)@50 - DDPM@50 (stochastic vs deterministic at equal steps) must lie within the "
            "comparable margin",
            "open: the DDIM paper's Table 1 at S=50 has eta=0 at FID 4.67 and eta=1 at 8.01",
            corrected="DDPM@50's lower quality is not only about step count: at 50 steps deterministic DDIM "
                      "scores measurably higher than stochastic DDPM (the DDIM paper's Table 1 agrees: eta=0 "
                      "FID 4.67, eta=1 8.01 at 50 steps).",
            group_override="roster-ddpm", kind="statistical", needs_trained_model=True,
            thresholds={"comparable_margin": COMPARABLE, "ddpm_seeds": DDPM_SEEDS, **QUALITY,
                        "step_effect_margin": T(0.0, "'lower quality' at 50 steps: any drop the interval can tell "
                                                     "from zero")},
        ),
        # ---------------- Exercise 3 ----------------
        Claim(
            "sweet-spot", "Exercise 3",
            "DPM-Solver: 5 steps garbled, 10 recognizable, 20 good, 50-200 nearly indistinguishable from 20",
            "per seed against the converged reference (DPM-Solver@200, same seed): checker score gaps for 5, 10 and "
            "20 steps and SSIM of the 50-200-step images to the 20-step image, each with its 95% interval",
            "likely confirmed",
            corrected="DPM-Solver: 20 steps good and close to converged, 10 recognizable, 5 clearly worse; how "
                      "garbled 5 steps looks depends on the model and the prompt, and on a small model the image "
                      "can still change after 20 steps, so check that 50 steps looks the same.",
            kind="statistical", needs_trained_model=True,
            thresholds={
                "step_counts": T((5, 10, 20, 50, 100, 200), "the lesson's grid"),
                "garbled_margin": MUCH_WORSE,
                "recognizable_margin": T(MUCH_WORSE.value, "'recognizable' at 10 steps: not much worse than "
                                                           "converged (the gap stays under the much-worse margin)"),
                "good_margin": T(COMPARABLE.value, "'good' at 20 steps: no worse than converged by the comparable "
                                                   "margin (one-sided: being better is fine)"),
                "indistinct_min_ssim": INDISTINCT_SSIM,
                "scored_steps": T((5, 10, 20, 200), "the step counts the checker-score statements read: 5, 10 and "
                                                    "20 against the converged 200"),
                "score_seeds": SCORE_SEEDS,
                **QUALITY,
                **CONVERGENCE,
            },
            expected={"tiny": REFUTED},
            expected_why="embedded model: 5 steps is much worse but short of garbled: on 384 held-out pairs "
                         "score@200 - score@5 is +0.136 [+0.123, +0.149] against the much-worse 0.174 (64% of "
                         "5-step images read right); resampled, 32 seeds decide that part in 38% of draws and 128, "
                         "the roster its scored statements run on (SCORE_SEEDS), in 89%; 10 steps is "
                         "recognizable, 20 good, and 50-200 steps nearly indistinguishable from 20 (SSIM 0.98-0.99)",
        ),
        Claim(
            "linear-time", "Exercise 3",
            "time grows about linearly with steps; fixed overhead is small",
            "DPM-Solver at 5..200 steps in interleaved rounds (each measurement the median of calls lasting "
            "min_time_s); per round R^2 of the least-squares line, and time = a + b*steps fitted on relative errors "
            "(timing noise is a factor); 95% intervals over rounds of R^2 and of a / (a + 20b); CPU time decides "
            "on the CPU",
            "confirmed on GPU; check on CPU",
            corrected="Time grows with the number of steps, but on this device not as a straight line with a "
                      "small fixed cost: measure the fixed cost per call before extrapolating.",
            kind="timing",
            thresholds={
                "min_r2": T(0.98, "'about linear': the line explains 98% of the variance"),
                "max_overhead_share": T(0.25, "'small overhead': |intercept| under a quarter of the 20-step time"),
                "step_counts": T((5, 10, 20, 50, 100, 200), "the lesson's grid"),
                **TIMING,
            },
        ),
        Claim(
            "no-gain-past-25", "Exercise 3",
            "DPM-Solver at 200 steps 'is not meaningfully better than at 25'",
            "checker score paired by seed: DPM-Solver@200 - DPM-Solver@25 against the comparable margin "
            "(one-sided: 200 must not be better by the margin or more)",
            "likely confirmed on SD 1.5; check on the embedded model",
            corrected="On this model DPM-Solver at 200 steps is measurably better than at 25; past 25 steps the "
                      "gain is small but not nil.",
            kind="statistical", needs_trained_model=True,
            thresholds={"comparable_margin": COMPARABLE, **QUALITY, **CONVERGENCE},
        ),
        # ---------------- Exercise 4 ----------------
        Claim(
            "callback-after-step", "Exercise 4",
            "the callback fires after each step; the last captured latent is z_0",
            "callback count against steps; last capture against output_type='latent'",
            "confirmed",
            corrected="On this setup the step-end callback did not fire once per step with the final latent "
                      "last: check the count and the last capture against output_type='latent'.",
        ),
        Claim(
            "clone-needed", "Exercise 4",
            "without .clone() every captured entry points to the same tensor",
            "capture without cloning: distinct tensor objects, storages and values?",
            "refuted: the pipeline rebinds latents every step",
            corrected="The pipeline rebinds latents to a new tensor every step, so captured latents stay "
                      "distinct without .clone(); cloning is a harmless safeguard, not a necessity.",
            expected=refuted_always,
            expected_why="the pipeline rebinds latents each step; un-cloned captures are distinct tensors that "
                         "keep their values",
        ),
        Claim(
            "coarse-to-fine", "Exercise 4",
            "DDIM intermediates go smoothly from noise to image, coarse first",
            "per seed, the decoded z_t after each step: SSIM to the final rises (dips at most max_ssim_dip) and "
            "the low radial frequency band settles strictly before the high band; the share of seeds where both "
            "hold, with its Wilson interval, against typical_share",
            "likely confirmed",
            corrected="DDIM's intermediates do not go smoothly from coarse to fine on most seeds of this model.",
            kind="statistical", needs_trained_model=True,
            thresholds={
                "max_ssim_dip": T(0.02, "'rises smoothly', allowing dips of 0.02 SSIM (noise in the metric)"),
                "settle_rel_error": T(0.1, "a band has settled when its energy of the difference to the final "
                                           "is under 10% of the final's energy in that band"),
                "typical_share": T(0.5, "the lesson describes DDIM's trajectory in general: it holds when it "
                                        "holds for most seeds (more than half)"),
                "decides_on": T("z_t", "the lesson's exercise decodes the latents z_t captured after each step; "
                                       "the scheduler's x0 preview is shown and measured but does not decide"),
            },
        ),
        Claim(
            "ddpm-10-worse", "Exercise 4",
            "DDPM at 10 steps is much worse than DDIM at 10 steps",
            "checker score of the finals paired by seed: DDIM@10 - DDPM@10 against the much-worse margin",
            "likely confirmed",
            corrected="DDPM at 10 steps is worse than DDIM at 10 steps, but not much worse on this model: the "
                      "gap is a fraction of the lesson's 'much worse'.",
            kind="statistical", needs_trained_model=True,
            thresholds={"much_worse_margin": MUCH_WORSE, "ddpm_seeds": DDPM_SEEDS, **QUALITY},
            expected={"tiny": REFUTED},
            expected_why="embedded model: DDPM@10 is worse than DDIM@10 but not by the much-worse margin "
                         "(DDIM@10 - DDPM@10 +0.06 [+0.03, +0.09] against 0.174: about one wrong attribute in five "
                         "images, not three)",
        ),
        Claim(
            "ddpm-formula-adjacent", "Exercise 4",
            "DDPM's reverse formula is calibrated for adjacent timesteps, so large gaps pile up errors",
            "one scheduler step, no model: DDPM's mean and std over a gap against DDIM(eta=1) over the same gap",
            "refuted: diffusers' DDPM uses the exact posterior over the gap, equal to DDIM with eta=1",
            corrected="diffusers' DDPM step uses the exact posterior over the gap between the two timesteps (it "
                      "equals DDIM with eta=1), so large gaps do not pile up formula errors; DDPM at few steps "
                      "is worse because it is stochastic.",
            thresholds={"rtol": T(1e-4, "float32 round-off between two algebraically equal formulas")},
            expected=refuted_always,
            expected_why="diffusers' DDPM uses the exact posterior over the gap, equal to DDIM with eta=1 (to "
                         "float32 round-off)",
        ),
        Claim(
            "dpm-multi-point", "Exercise 4",
            "DPM-Solver evaluates the model at several points per step to read curvature",
            "U-Net calls per step for DPMSolverMultistep, DPMSolverSinglestep and HeunDiscrete",
            "multistep: 1 call per step (it reuses past outputs); Heun: 2N-1 calls",
            corrected="DPM-Solver++ (multistep) evaluates the model once per step and reads the curvature from "
                      "earlier steps' outputs; solvers such as Heun are the ones that evaluate several points "
                      "per step.",
            thresholds={"multi_point_calls": T(1.5, "'several points per step': clearly more than one U-Net call "
                                                    "per step on average")},
            expected=refuted_always,
            expected_why="DPMSolverMultistep makes 1 U-Net call per step; it reuses past outputs instead of "
                         "evaluating several points",
        ),
        Claim(
            "ddpm-intermediates-noisier", "Exercise 4",
            "the DDPM row of intermediates is 'noisier, less coherent' than DDIM's at 10 steps",
            "per seed, over the late steps (the second half, final excluded), DDPM@10 minus DDIM@10: residual "
            "noise (skimage estimate_sigma) of the decoded z_t, and DDIM minus DDPM SSIM to the own final; both "
            "95% intervals above 0",
            "likely confirmed for the late steps",
            corrected="DDPM's late intermediates at 10 steps are not noisier than DDIM's on this model: the "
                      "lesson's 'noisier, less coherent' does not hold as written.",
            kind="statistical", needs_trained_model=True,
            thresholds={
                "late_steps": T("second half", "the lead names the late steps: early intermediates are noise "
                                               "for both samplers; the final is excluded because SSIM to the "
                                               "own final is 1 there by construction"),
                "margin": T(0.0, "'noisier' and 'less coherent' as orderings: any difference the interval can "
                                 "tell from zero"),
                "ddpm_seeds": DDPM_SEEDS,
            },
            expected={"tiny": REFUTED},
            expected_why="embedded model: DDPM@10's late intermediates are less coherent but not noisier than "
                         "DDIM@10's (residual noise DDPM - DDIM -0.07 [-0.13, -0.01] on 64 seeds; -0.36 [-0.59, "
                         "-0.13] on version 2)",
        ),
        # ---------------- Takeaways ----------------
        Claim(
            "recommended-default", "Takeaways",
            "DPM-Solver++ at 20-30 steps is the default to use",
            "at 20 and 25 steps, paired by seed: converged score (DPM-Solver@200) minus score within the "
            "comparable margin (one-sided), and time per round as a share of DDPM@1000's in the same round",
            "likely confirmed",
            corrected="DPM-Solver++ at 20-30 steps is not yet shown to be the default on this model: check that "
                      "20 steps reaches converged quality before recommending it.",
            kind="statistical", needs_trained_model=True, group_override="timing",
            thresholds={
                "comparable_margin": COMPARABLE,
                "max_time_share": T(0.10, "a default worth recommending over DDPM@1000 costs at most a tenth of its "
                                          "time (the lesson's own figure is 1/50)"),
                "steps": T((20, 25), "the lesson's 20-30-step range at the two step counts the grid of Exercise 3 "
                                     "does not already hold together: 20 and 25"),
                **TIMING,
                **QUALITY,
                **CONVERGENCE,
            },
        ),
        # ---------------- Beyond the lesson ----------------
        Claim(
            "default-on-front", "Beyond the lesson",
            "the lesson's default (DPM-Solver++ at 20-30 steps) is the sampler to use",
            "the sampler atlas (--atlas): every compatible diffusers scheduler from the stock config on a grid of "
            "counted U-Net calls (5, 10, 20, 50) over the roster; refuted if another sampler's paired score at half "
            "the default's calls or fewer is not worse than DPM-Solver++@20's by the comparable margin",
            "open",
            corrected="DPM-Solver++ at 20-30 steps is not the cheapest way to this quality on every model: on "
                      "this one another sampler reaches it with at most half the U-Net calls.",
            kind="statistical", needs_trained_model=True, group_override="roster",
            thresholds={"comparable_margin": COMPARABLE, **QUALITY,
                        "half_the_calls": T(0.5, "the claim's test: the same quality with at most half the calls"),
                        "calls_grid": T((5, 10, 20, 50), "the atlas's grid of U-Net calls per image: the lesson's "
                                                         "step counts up to 50")},
            expected={"tiny": REFUTED},
            expected_why="embedded model: Euler and DDIM at 10 calls reach DPM-Solver++@20's checker score "
                         "(paired gaps -0.011 [-0.026, +0.004] and -0.007 [-0.028, +0.013], the margin is -0.058): "
                         "on this model the quality of 20 DPM-Solver++ steps costs half the calls",
        ),
        Claim(
            "final-sigma-zero", "Beyond the lesson",
            "DPM-Solver++ ends at sigma zero; ending at sigma_min leaves residual noise (#5689, PR #6477)",
            "DPM-Solver++ at 10 steps with final_sigmas_type='sigma_min' and 'zero', paired by seed: residual noise "
            "(skimage estimate_sigma) difference above 0, gated by a noise control",
            "confirmed in the diffusers PR; measure",
            corrected="On this model ending DPM-Solver++ at sigma_min instead of zero left no measurable "
                      "residual noise.",
            kind="statistical", needs_trained_model=True,
            thresholds={"steps": T(10, "few steps, where the last sigma is largest (the PR's case)")},
        ),
        Claim(
            "karras-sigmas-few-steps", "Beyond the lesson",
            "Karras sigmas help at 10 steps or fewer",
            "DPM-Solver++ with and without use_karras_sigmas at 5 and 10 steps, paired by seed: score gain above 0",
            "open",
            corrected="Karras sigmas do not help DPM-Solver++ at every step count of 10 or fewer: on this model "
                      "they hurt at 5 steps, so compare with and without them before turning them on.",
            kind="statistical", needs_trained_model=True,
            thresholds={"steps": T((5, 10), "'10 steps or fewer': the two ends of that range on the lesson's grid"),
                        **QUALITY},
            expected={"tiny": REFUTED},
            expected_why="embedded model: Karras sigmas lower the checker score at 5 steps (paired gain -0.13 "
                         "[-0.22, -0.04]), though they raise it at 10 (+0.10 [+0.06, +0.15])",
        ),
        Claim(
            "lower-order-final", "Beyond the lesson",
            "lower_order_final stabilizes DPM-Solver below 15 steps",
            "DPM-Solver++ (final_sigmas_type='sigma_min', the only setting where diffusers honours "
            "lower_order_final=False) with and without lower_order_final at 5, 8 and 10 steps: score gain above 0",
            "open",
            corrected="lower_order_final did not measurably stabilize DPM-Solver++ below 15 steps on this "
                      "model.",
            kind="statistical", needs_trained_model=True,
            thresholds={"steps": T((5, 8, 10), "below diffusers' 15-step cut-off for lower_order_final"),
                        **QUALITY},
        ),
        Claim(
            "sweet-spot-guidance", "Beyond the lesson",
            "(implicit in the lesson) the DPM-Solver sweet spot of about 20 steps is a property of the sampler, "
            "whatever the guidance scale",
            "DPM-Solver++ at guidance 1, 3, 7.5 and 12 on the same roster seeds: per step count the 95% interval of "
            "SSIM to the converged image (DPM-Solver++@200 at the same guidance); the knee is the smallest step "
            "count that reaches the 'nearly indistinguishable' margin, bracketed by the first step count whose "
            "interval is not wholly below it and the first whose interval is wholly at or above it. Refuted if the "
            "knee at 12 is at least twice the knee at 1 with the brackets apart, confirmed if all knees sit within "
            "one grid step",
            "open: practitioners raise the step count with the guidance scale",
            corrected="DPM-Solver's sweet spot of about 20 steps depends on the guidance scale: at high "
                      "guidance it takes more steps to converge, so check the step count at the guidance you "
                      "use.",
            kind="statistical", needs_trained_model=True,
            thresholds={
                "guidances": T((1.0, 3.0, 7.5, 12.0), "the spec's four: no guidance (1, the pipeline skips CFG), "
                                                      "light (3), the lesson's and diffusers' default (7.5), "
                                                      "strong (12)"),
                "step_counts": T((5, 10, 20, 25, 50, 100), "the step counts at which the lesson places its sweet spot "
                                                           "(Exercise 3's grid, plus 25 of 'no better than at 25'): "
                                                           "the roster already holds them at guidance 7.5"),
                "reference": T(CONVERGENCE_REFERENCE.value, "the suite's converged solution (CONVERGENCE_REFERENCE: "
                                                            "DPM-Solver++@200, same z_T), at each guidance; its SSIM "
                                                            "to itself is 1, so every knee has an upper end"),
                "knee_ssim": INDISTINCT_SSIM,
                "knee_ratio": T(2.0, "'the sweet spot moves with guidance': the knee at 12 is at least twice the knee "
                                     "at 1 (a doubling of the cost), its lower end against the other's upper end"),
                "seeds": T(8, "the first 8 roster seeds at every guidance (the 7.5 images are the roster's own): what "
                              "the 60 s budget of this claim buys on a 2-core CPU; at the convergence study's spread "
                              "of SSIM near the knee (sd ~0.04) the interval's half-width is ~0.035 at 8 seeds, and "
                              "a bracket that stays open says so"),
            },
            expected={"tiny": REFUTED},
            expected_why="embedded model: DPM-Solver++'s knee moves from 5 steps at guidance 1 (and 3) to 25 at "
                         "guidance 12 (brackets 5-10 and 20-25, 8 seeds; 20 [10-20] at 7.5): strong guidance needs "
                         "more steps",
        ),
        Claim(
            "steps-are-calls", "Beyond the lesson",
            "Exercise 1 prints 'U-Net forward passes: num_steps x 2': each inference step is one U-Net evaluation "
            "(two with CFG)",
            "U-Net calls counted by a forward hook at 10, 20 and 50 steps for every scheduler in "
            "pipe.scheduler.compatibles (from the stock config, one seed, guidance 7.5): U-Net evaluations per image "
            "(a call of batch 2B counts 2 per image) against steps x 2; refuted on the schedulers where they differ, "
            "named",
            "refuted for PNDM (N+1 calls, #1106), Heun and KDPM2 (2N-1)",
            corrected="Not every scheduler makes one U-Net evaluation per step: PNDM, Heun and KDPM2 make more "
                      "(Heun 2N-1 calls for N steps), so count calls, not steps, when comparing cost.",
            thresholds={
                "steps": T((10, 20, 50), "a few-step count and the lesson's two: DPM-Solver at 20, DDIM at 50"),
                "guidance": T(7.5, "the lesson's guidance, with CFG: the printed equation is num_steps x 2"),
            },
            expected=refuted_always,
            expected_why="the pipeline calls the U-Net once per entry of scheduler.timesteps: PNDM (SD 1.5's stock "
                         "scheduler) makes N+1 calls, Heun and KDPM2 2N-1 (diffusers #1106)",
        ),
        Claim(
            "ddim-step-lands-on-schedule", "Beyond the lesson",
            "DDIM steps from each timestep to the schedule's next one",
            "one DDIMScheduler.step per scheduled timestep, no model (a zero noise prediction): the alpha it used, "
            "read back from prev_sample, against the alpha of the schedule's next timestep, for each "
            "timestep_spacing at 10, 30 and 50 steps; where it misses, DDIM against the same DDIM with the step "
            "to the next scheduled timestep, SSIM and largest pixel difference of the final images",
            "refuted: step() takes t - T // N whatever the spacing (#12633, #11347)",
            corrected="DDIMScheduler.step takes the previous timestep as t - T // N whatever the spacing, so "
                      "with 'trailing' or 'linspace' spacing a step can miss the schedule's next timestep "
                      "(diffusers #12633, #11347).",
            thresholds={
                "spacings": T(("leading", "trailing", "linspace"), "every timestep_spacing DDIMScheduler offers"),
                "steps": T((10, 30, 50), "10 and 50 divide 1000 and 30 does not: the case #12633 names for "
                                         "'trailing'; 50 is the lesson's DDIM"),
                "rtol": T(1e-5, "reading the alpha back repeats step()'s float32 square roots (float32 eps "
                                "1.2e-7, a few of them: under 1e-6); neighbouring timesteps' alphas differ by at "
                                "least beta_start = 8.5e-4 relative, so a miss of one timestep is 85x outside it"),
                "effect_steps": T(30, "the step count of the grid that 1000 does not divide: the one where both "
                                      "'trailing' and 'linspace' can miss"),
                "effect_seeds": T(8, "the first 8 roster seeds: the effect is evidence beside an exact verdict"),
                "indistinct_min_ssim": INDISTINCT_SSIM,
            },
            expected=refuted_always,
            expected_why="DDIMScheduler.step takes the previous timestep as t - T // N, which is not the schedule's "
                         "next timestep with 'linspace' spacing, nor with 'trailing' where N does not divide 1000 "
                         "(diffusers #12633, #11347)",
        ),
    ]


#: The claims whose verdict is a fact of diffusers' API or of the sampler's algorithm (scope "diffusers").
DIFFUSERS_FACTS = ("same-weights", "lesson-code-runs", "cfg-two-passes", "ddim-deterministic", "ddpm-stochastic",
                   "ddim-depends-only-on-zT", "ddpm-noise-draws", "ddpm-reproducible-when-reseeded", "ddim-eta",
                   "callback-after-step", "clone-needed", "ddpm-formula-adjacent", "dpm-multi-point",
                   "steps-are-calls", "ddim-step-lands-on-schedule")

CLAIMS: dict[str, Claim] = {c.id: (replace(c, scope="diffusers") if c.id in DIFFUSERS_FACTS else c)
                            for c in _claims()}


def get(claim_id: str) -> Claim:
    try:
        return CLAIMS[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim id {claim_id!r}; known: {', '.join(CLAIMS)}") from None
