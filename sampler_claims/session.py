"""The claims session: settings, results, and the model, engine, quality metric, quality controls and
convergence bases once computed. One per pytest run, built in pytest_configure and kept in `config.stash`
under SESSION_KEY (as pytest-benchmark and pytest-html keep theirs); the plugin's hooks and fixtures read it.

torch, diffusers and the engine are imported where a model is loaded, not here: the plugin imports this module
at start-up, and `pytest --help`, --claims-list and usage errors must not wait for them.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from typing import TYPE_CHECKING, Any

import pytest

from . import registry
from .calibration import UNIT_TIMED, Cost, RunClock, Tally, unit_from
from .options import Settings
from .plan import fmt_time
from .registry import Control, Run
from .results import Results
from .verdict import Separation

if TYPE_CHECKING:
    from .convergence import Basis
    from .engine import Engine, Generation
    from .models import LoadedModel
    from .quality import Quality, Roster


class ClaimsSession:
    """Built once in pytest_configure: settings, results, and the model and engine once loaded."""

    def __init__(self, settings: Settings, quality_arg: str = "auto", clip_arg: str = "auto") -> None:
        self.settings = settings
        self.results = Results(settings.model_kind)
        self.started = time.time()
        self._model: LoadedModel | None = None
        self._engine: Engine | None = None
        self._load_error: str | None = None
        #: --quality and --clip-model: which metric the quality claims use (checker or CLIP score) and which CLIP.
        self.quality_arg = quality_arg
        self.clip_arg = clip_arg
        self._quality: Quality | None = None
        #: The quality controls and convergence bases run so far, keyed by the registry values that define them:
        #: claims that share a value share one computation, and a claim with another value gets its own.
        self._controls: dict[tuple[Control, Control], tuple[Separation | None, Generation, Generation]] = {}
        self._bases: dict[tuple[Run, Control, Control, float], Basis] = {}
        #: Where the report was written (pytest_sessionfinish), for the terminal summary.
        self.report_paths: list[Any] = []
        #: sampler_claims.progress.Progress: one line per generation (set by the plugin; None stays quiet).
        self.progress: Any = None
        self._chunks: dict[str, list[list[int]]] = {}
        #: The claim whose test is running (enter_claim), for the engine's ledger.
        self.current_claim: str | None = None
        #: sampler_claims.plan.Plan of the selected claims (set after collection), and --budget's outcome.
        self.plan: Any = None
        self.plan_started = 0.0
        #: The run's time left, corrected as generations finish (started with the first claim test).
        self.clock: RunClock | None = None
        #: When the last claim test finished (the measured time of the claims ends there).
        self.claims_finished = 0.0
        #: Seconds of tests without a claim in this session (the harness's tests/ before the claims, as CI runs
        #: them): not part of the claims' cost.
        self.other_tests_s = 0.0
        #: The timing rounds once measured (sampler_claims.timing.Rounds): DDPM@1000's per-round time is the unit
        #: of cost.
        self.rounds: Any = None
        self.budget: dict[str, Any] | None = None

    @property
    def quality_mode(self) -> str:
        """auto = the checker where the model has one (the embedded model), else CLIP score."""
        if self.quality_arg != "auto":
            return self.quality_arg
        return "checker" if self.settings.model_kind == "tiny" else "clip"

    def quality(self) -> Quality:
        from .quality import Quality

        if self._quality is None:
            has_checker = self.settings.model_kind == "tiny"
            if self.quality_mode == "checker":
                self._quality = Quality(has_checker=has_checker)
            else:
                from . import clip as clip_mod

                source = clip_mod.resolve_source(self.clip_arg, self.settings.model_kind)
                try:
                    scorer = clip_mod.load_clip(source, self.settings.device)
                except clip_mod.ClipUnavailable as exc:
                    self._quality = Quality(has_checker, "clip", clip_error=str(exc).replace("\n", " "))
                else:
                    self._quality = Quality(has_checker, "clip", clip=scorer,
                                            clip_per_wrong_attribute=registry.clip_scale(scorer.name))
        return self._quality

    def quality_control(self, claim: registry.Claim, engine: Engine,
                        roster: Roster) -> tuple[Separation | None, Generation, Generation]:
        """(Separation or None, the checker control's good generation, its bad one) for this claim's
        `quality_control` and `clip_control`, computed once per distinct pair of values."""
        key = (claim.t("quality_control", Control), claim.t("clip_control", Control))
        if key not in self._controls:
            self._controls[key] = self.quality().control(engine, roster, *key)
        return self._controls[key]

    def convergence(self, claim: registry.Claim, engine: Engine, roster: Roster) -> Basis | None:
        """The convergence basis this claim's entry names (reference, its check, the metric's control), computed
        once per distinct set of values; None on the checker path or for a claim that names no reference."""
        if self.quality().mode != "clip" or "convergence_reference" not in claim.thresholds:
            return None
        key = (claim.t("convergence_reference", Run), claim.t("reference_check", Control),
               claim.t("convergence_control", Control), claim.t("converged_ratio", float))
        if key not in self._bases:
            from .convergence import basis

            reference, check, pair, bound = key
            self._bases[key] = basis(engine, roster, reference=reference, check=check, pair=pair, bound=bound)
        return self._bases[key]

    def model(self) -> LoadedModel:
        from .models import ModelLoadError, load

        if self._load_error:
            pytest.fail(self._load_error, pytrace=False)
        if self._model is None:
            try:
                self._model = load(self.settings)
            except ModelLoadError as exc:
                self._load_error = str(exc)
                pytest.fail(self._load_error, pytrace=False)
        return self._model

    def engine(self) -> Engine:
        if self._engine is None:
            from .engine import Engine

            m = self.model()
            if self.settings.device == "cpu":
                from .allocator import keep_freed_memory

                keep_freed_memory()  # before the first generation: every one at the run's steady speed
            self._engine = Engine(m.pipe, model_key=self.settings.model_key, size=m.size,
                                  device=self.settings.device, max_batch=self.settings.max_batch,
                                  progress=self.progress, compile=self.settings.compile,
                                  channels_last=self.settings.channels_last)
            self._engine.ledger_key = self.current_claim
        return self._engine

    def start_clock(self) -> None:
        """Start the run's clock at the first claim test: the plan's time counts from there."""
        self.plan_started = time.perf_counter()
        if self.plan is not None:
            self.clock = RunClock(self.plan.seconds, self.plan.evaluations, self.plan.calibration)
            self.clock.start(self._engine.tally if self._engine is not None else None)

    def enter_claim(self, claim_id: str) -> None:
        """The claim whose test runs now: the engine's ledger counts its generations under it."""
        self.current_claim = claim_id
        if self._engine is not None:
            self._engine.ledger_key = claim_id

    def evaluations(self, claim_id: str) -> dict[str, Any]:
        """The claim's U-Net evaluations: planned (the catalogue's runs, sampler_claims.plan) and made (the engine's
        ledger), shared generations counted once, in the claim that made them."""
        from .timing import REPETITIONS

        ledger = self._engine.ledger if self._engine is not None else {}
        out: dict[str, Any] = {"made": ledger.get(claim_id, 0)}
        if self.plan is not None and claim_id in self.plan.per_claim:
            out["planned"] = self.plan.per_claim[claim_id]
        extra = ledger.get(f"{claim_id} {REPETITIONS}")
        if extra:
            out["timing_repetitions"] = extra
        if self._engine is not None:
            out["generations"] = sorted(self._engine.requested.get(claim_id, []))
        if self.plan is not None and claim_id in self.plan.per_claim_runs:
            out["planned_generations"] = sorted(self.plan.per_claim_runs[claim_id])
        return out


    def timing_done(self, before: Tally) -> None:
        """The timing rounds ended: they count as the work the plan gave them (RunClock.credit), in seconds and in
        evaluations, whatever number of repetitions this machine's speed made them run."""
        if self.clock is None or self._engine is None or self.plan is None:
            return
        from .calibration import timing_planned

        cal = self.plan.calibration
        made = self._engine.tally.since(before)
        seconds, evaluations = timing_planned(cal, self.settings.timing_rounds or 0, self.settings.model_source)
        work = seconds - made.planned_seconds(cal) if cal is not None else evaluations - made.evaluations
        self.clock.credit(work, evaluations - made.evaluations)

    def run_left(self, partial: tuple[int, bool, int, float] | None = None) -> str | None:
        """The run's time left: the plan's remaining evaluations at the rate this run has measured so far
        (sampler_claims.calibration.RunClock); never 0 s while planned evaluations remain. `partial`: the
        generation in progress as (images, guided, calls, fraction done), counted for what it has done."""
        if self.plan is None or not self.plan.evaluations:
            return None
        if self.clock is None:
            return f"~{fmt_time(self.plan.seconds)} planned" if self.plan.seconds is not None else None
        tally = self._engine.tally if self._engine is not None else Tally()
        if partial is not None:
            tally = tally.with_partial(*partial)
        return self.clock.text(tally)

    def cost(self) -> dict[str, Any]:
        """Planned and measured time, and the run's cost in units of one DDPM@1000 image with guidance on one
        thread (the header, the terminal summary and claims.json's environment give it)."""
        cal = self.plan.calibration if self.plan is not None else None
        unit_s, source = unit_from(self.rounds, cal)
        run_s = time.time() - self.started - self.other_tests_s
        end = self.claims_finished or time.perf_counter()
        out: dict[str, Any] = {
            "planned_claims_s": None if self.plan is None or self.plan.seconds is None else round(self.plan.seconds, 1),
            "measured_claims_s": round(end - self.plan_started, 1) if self.plan_started else None,
            "calibration": cal.as_dict() if cal is not None else None,
            "compile": self.settings.compile, "channels_last": self.settings.channels_last,
            "run": Cost(run_s, unit_s, source).as_dict(),
        }
        if self.rounds is not None and UNIT_TIMED in self.rounds.wall:
            out["unit_rounds_wall_s"] = [round(x, 3) for x in self.rounds.wall[UNIT_TIMED]]
        return out

    def cost_lines(self) -> list[str]:
        """The terminal summary's lines: planned against measured, and the cost in units."""
        c = self.cost()
        lines = []
        if c["measured_claims_s"] is not None:
            planned = (f"planned ~{fmt_time(c['planned_claims_s'])}, " if c["planned_claims_s"] is not None
                       else "no time planned, ")
            lines.append(f"claims time: {planned}took {fmt_time(c['measured_claims_s'])} from the first claim test"
                         + (f"; compilation {c['calibration']['compile_s']:.0f} s (in the calibration)"
                            if c["compile"] and c["calibration"] else ""))
        r = c["run"]
        lines.append(Cost(r["seconds"], r["unit_s"], r["unit_source"]).line())
        return lines

    def drain_chunks(self, claim_id: str) -> list[list[int]]:
        """The chunk sizes of the generations run since the last call (for the claim whose test just ran),
        kept across its setup and call; recorded with where the claim ran, not with its metrics."""
        if self._engine is None:
            return self._chunks.get(claim_id, [])
        self._chunks.setdefault(claim_id, []).extend(self._engine.chunk_log)
        self._engine.chunk_log.clear()
        return self._chunks[claim_id]

    def environment(self) -> dict[str, Any]:
        import diffusers
        import torch

        from .threads import TIMING_THREADS

        s = self.settings
        env: dict[str, Any] = {
            "model": s.model_kind, "model_source": s.model_source, "model_reason": s.model_reason,
            "device": s.device, "dtype": s.dtype_name, "seeds": s.seeds, "seed_base": s.seed_base,
            "timing_rounds": s.timing_rounds, "quality": self.quality_mode, "clip_model": self.clip_arg,
            "torch": torch.__version__, "diffusers": diffusers.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "gpu": torch.cuda.get_device_name(0) if s.device.startswith("cuda") else None,
            "offload": s.offload, "size": self._model.size if self._model else s.size, "max_batch": s.max_batch,
            "determinism": determinism_state(), "torch_threads": torch.get_num_threads(),
            "timing_threads": TIMING_THREADS if s.device == "cpu" else torch.get_num_threads(),
            "ddpm_seeds": s.seeds * registry.DDPM_SEEDS.value, "score_seeds": s.seeds * registry.SCORE_SEEDS.value,
            "started": _dt.datetime.fromtimestamp(self.started, _dt.timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(time.time() - self.started, 2),
        }
        if self._model is not None:
            env["load_seconds"] = round(self._model.load_seconds, 3)
        if self._quality is not None:
            env["quality_basis"] = self._quality.basis
        if self._engine is not None:
            env["generation_cache"] = dict(self._engine.stats)
            if self._engine.fits:
                env["measured_fit"] = dict(self._engine.fits)
        chunks = {cid: r.ran_on["chunks"] for cid, r in self.results.records.items() if r.ran_on.get("chunks")}
        if chunks:
            env["chunk_sizes"] = chunks
        env["catalogue"] = list(registry.FILES)
        overrides = {c.id: [{"what": what, "name": name, "built_in": old, "value": new}
                            for what, name, old, new in c.overrides] for c in registry.CLAIMS.values() if c.overrides}
        if overrides:
            env["catalogue_overrides"] = overrides
        if self.plan is not None:
            env["plan"] = self.plan.as_dict()
        env["compile"], env["channels_last"] = s.compile, s.channels_last
        env["cost"] = self.cost()
        if self.budget is not None:
            env["budget"] = self.budget
        ran = {r.ran_on["worker"]: r.ran_on["device"] for r in self.results.records.values() if r.ran_on}
        if ran:
            env["workers"] = dict(sorted(ran.items()))
        return env


def determinism_state() -> dict[str, Any]:
    """The determinism settings in force (recorded with the environment and beside ddim-deterministic)."""
    import torch

    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


SESSION_KEY = pytest.StashKey[ClaimsSession]()
