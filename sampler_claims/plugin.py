"""The pytest plugin: hooks and fixtures only. The session object they share lives in sampler_claims.session.

Settings are resolved once in pytest_configure (bad input is a usage error there, options are checked by
their `type=` parsers), the pipeline is loaded lazily once per session, the report is written in
pytest_sessionfinish on the controller only, whatever happened to the tests, and its summary is printed in
pytest_terminal_summary.

Start-up is kept light: this module imports neither torch nor diffusers (they take seconds to import), so
`pytest --help`, --claims-list and every usage error answer in about a second. The checks that need no device
run first; torch is imported when the device is resolved, diffusers when the model loads.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from . import options, registry
from .options import QUALITY_MODES, Settings, SettingsError
from .quiet import silence_notices
from .outcomes import CLAIM_PROP, PROGRESS_PROP, RECORD_PROP, OutcomeCollector, claim_state, shorten_reason, \
    shown_verdict, teststatus, worker_id
from .results import ClaimRefuted, record_payload
from .session import SESSION_KEY, ClaimsSession

if TYPE_CHECKING:
    from .engine import Engine
    from .models import LoadedModel
    from .prompts import Prompts
    from .quality import Quality, Roster
    from .quality_claim import QualityClaim
    from .results import ClaimRecorder
    from .timing import Rounds

silence_notices()


# --------------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("claims", "sampler claims: what to measure the lesson's claims on")
    group.addoption("--model", action="store", default="auto", metavar="NAME|PATH|HUB_ID",
                    help="model to measure: auto, tiny (embedded), sd15, sd15-random, a local diffusers folder "
                         "or a hub id (default: auto = sd15 with CUDA and weights, else tiny)")
    group.addoption("--device", action="store", default="auto", metavar="DEVICE",
                    help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    group.addoption("--dtype", action="store", default="auto", metavar="DTYPE",
                    help="auto, float32, float16 or bfloat16; float16 is refused on the CPU "
                         "(default: auto = float16 on CUDA, float32 elsewhere)")
    group.addoption("--seeds", action="store", default=options.DEFAULT_SEEDS, type=options.positive_int,
                    metavar="N", help=f"seeds per statistical claim (default: {options.DEFAULT_SEEDS})")
    group.addoption("--seed-base", action="store", default=options.DEFAULT_SEED_BASE, type=int, metavar="N",
                    help="move every seed of the run (and the tiny model's prompt roster) to a fresh range starting "
                         f"N further on: a replication on unseen prompt-seed pairs (default: "
                         f"{options.DEFAULT_SEED_BASE})")
    rounds = options.default_timing_rounds()
    group.addoption("--timing-rounds", action="store", default=rounds, type=options.positive_int,
                    metavar="N", help="interleaved rounds of the timed configurations; intervals over rounds decide "
                                      f"the timing claims; the registry's timing_rounds sizes them (default: {rounds})")
    group.addoption("--claim", action="append", default=[], metavar="ID", dest="claim_ids",
                    help="run only this claim (repeatable), with the tests it needs; --claims-list lists the ids "
                         "(default: every claim)")
    group.addoption("--claims-file", action="append", default=[], metavar="PATH", dest="claims_files",
                    help="a TOML file of [[claim]] tables read after the built-in catalogue (repeatable): new claims "
                         "of the existing rule kinds, or overrides of an entry's runs and thresholds, each shown in "
                         "the header and the report beside the built-in value; write it --claims-file=PATH so pytest "
                         "does not take the path for a test folder (default: none)")
    group.addoption("--claims-list", action="store_true", default=False,
                    help="list every claim (id, exercise, kind, scope and the lesson's words) and exit; loads no "
                         "model")
    group.addoption("--atlas", action="store_true", default=False,
                    help="also run the sampler atlas (every compatible scheduler on a grid of U-Net calls) and "
                         "decide default-on-front; about 3-5 minutes on a 2-core CPU (default: off)")
    group.addoption("--claims-compare", action="store", default=None, metavar="OLD.json",
                    help="compare this run's verdicts, intervals and environment with an earlier claims.json and "
                         "show the differences at the top of the report (default: no comparison)")
    group.addoption("--claims-fail-on-change", action="store_true", default=False,
                    help="with --claims-compare: exit non-zero when a decided verdict changed (default: off)")
    group.addoption("--claims-report", action="store", default=options.DEFAULT_REPORT, metavar="PATH",
                    help=f"HTML report path; claims.json is written beside it (default: {options.DEFAULT_REPORT})")
    group.addoption("--quality", action="store", default="auto", choices=QUALITY_MODES, metavar="{auto,checker,clip}",
                    help="quality metric of the quality claims: checker (the embedded world's analytic checker), "
                         "clip (CLIP score plus convergence to a reference: Stable Diffusion 1.5's path), auto = "
                         "checker where the model has one (the embedded model), else clip (default: auto)")
    group.addoption("--clip-model", action="store", default="auto", metavar="ID|PATH",
                    help="CLIP for --quality clip: a local folder, else the HF cache, else the hub (unless "
                         "HF_HUB_OFFLINE); auto = openai/clip-vit-base-patch16, or fixtures/tiny-clip on the "
                         "embedded model (default: auto)")
    group.addoption("--deterministic", action="store_true", default=False,
                    help="apply diffusers' full-determinism settings (deterministic algorithms, cuBLAS "
                         "workspace, cuDNN, TF32 off) (default: off)")
    group.addoption("--offload", action="store_true", default=False,
                    help="accelerate's model CPU offload, for GPUs under 8 GB (default: off)")
    group.addoption("--size", action="store", default=None, type=int, metavar="PX",
                    help="image side in pixels (default: the model's native size)")
    group.addoption("--max-batch", action="store", default=None, type=options.positive_int, metavar="N",
                    help="at most N seeds per pipeline call; chunked results match one batch (bit for bit at small "
                         "batches on the CPU, to 1e-6 at large ones) "
                         "(default: measured on CUDA, a peak-memory probe on the first generation of each shape, "
                         "then the largest chunk that fits with headroom; one batch on the CPU)")
    group.addoption("--claims-plan", action="store_true", default=False,
                    help="print the cost plan of the selected claims (U-Net evaluations per claim group and the time "
                         "they take here, from a short calibration) and exit without running them (default: off)")
    group.addoption("--budget", action="store", default=None, type=options.positive_float, metavar="MINUTES",
                    help="shrink --seeds to the largest count whose planned time fits MINUTES; the header and the "
                         "report say so and name the claims the power calculation expects to leave inconclusive "
                         "(default: no budget)")
    group.addoption("--compile", action="store_true", default=False,
                    help="torch.compile the U-Net (inductor; the CPU needs a C++ compiler); the calibration pays the "
                         "compilation (about three graphs: one seed, one seed without guidance, the roster) and "
                         "the plan says how long it took; the timing claims then time the compiled U-Net "
                         "(default: off)")
    group.addoption("--channels-last", action="store_true", default=False,
                    help="the U-Net in channels_last memory format; images may change in the last bits "
                         "(default: off)")
    group.addoption("--threads", action="store", default=None, type=options.positive_int, metavar="N",
                    help="torch CPU threads for the generations (default on the CPU: the cores this process may "
                         "use, shared among xdist workers; torch's own choice elsewhere). The timing rounds always "
                         "run on one thread: beside a busy neighbour two threads made step times vary up to 50x")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "claim(id): the test decides (part of) the claim with this id")
    config.addinivalue_line("markers", "negative_of(*ids): the test is a negative control of these claims' rules "
                                       "(checked at collection: every claim has one)")
    if config.getoption("help", default=False):
        return
    files = config.getoption("claims_files", default=None) or []
    if files:
        from .catalogue import CatalogueError

        try:
            registry.use_files(files)
        except CatalogueError as exc:
            raise pytest.UsageError(f"--claims-file: {exc}") from None
        config.add_cleanup(registry.use_files)  # the built-in catalogue again (an in-process pytester run)
    if config.getoption("--claims-list", default=False):
        return
    try:
        settings = _settings(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    if config.getoption("--deterministic", default=False):
        from diffusers.utils.torch_utils import enable_full_determinism

        enable_full_determinism()
    cs = ClaimsSession(settings, config.getoption("--quality", default="auto") or "auto",
                       config.getoption("--clip-model", default="auto") or "auto")
    cs.results.compare_with = config.stash.get(_COMPARE_KEY, None)
    config.stash[SESSION_KEY] = cs
    if worker_id(config) is None:
        from .reporting import ClaimsReport

        config.pluginmanager.register(OutcomeCollector(cs.results, config), "sampler-claims-outcomes")
        config.pluginmanager.register(ClaimsReport(config), "sampler-claims-report")
    threads = config.getoption("--threads", default=None)
    if threads is not None or settings.device == "cpu":
        import torch

        from .threads import generation_threads, xdist_workers

        torch.set_num_threads(generation_threads(threads, xdist_workers()))


#: The earlier run --claims-compare read at start-up: (path, its claims.json).
_COMPARE_KEY = pytest.StashKey[tuple]()


def _settings(config: pytest.Config) -> Settings:
    """Every option checked, the cheap ones first: claim ids, paths and combinations before torch is imported
    to resolve the device, and everything before a model loads."""
    options.check_early(claim_ids=config.getoption("claim_ids", default=None) or [],
                        clip_model=config.getoption("--clip-model", default="auto") or "auto",
                        known_claims=registry.CLAIMS)
    old = config.getoption("--claims-compare", default=None)
    if old:
        from .compare import CompareError, load

        try:
            config.stash[_COMPARE_KEY] = (str(old), load(old))
        except CompareError as exc:
            raise SettingsError(str(exc)) from None
    elif config.getoption("--claims-fail-on-change", default=False):
        raise SettingsError("--claims-fail-on-change needs --claims-compare OLD.json (an earlier run's claims.json)")
    if config.getoption("--budget", default=None) and getattr(config.option, "numprocesses", None):
        raise SettingsError("--budget sizes the roster from a calibration in one process; run it without -n "
                            "(or pass --seeds N with -n)")
    return options.resolve(
        model=config.getoption("--model"), device=config.getoption("--device"),
        dtype=config.getoption("--dtype"), seeds=config.getoption("--seeds"),
        report=config.getoption("--claims-report"), deterministic=config.getoption("--deterministic"),
        offload=config.getoption("--offload"), size=config.getoption("--size"),
        rootdir=config.rootpath, seed_base=config.getoption("--seed-base"), worker=worker_id(config),
        timing_rounds=config.getoption("--timing-rounds"), max_batch=config.getoption("--max-batch"),
        compile=config.getoption("--compile", default=False),
        channels_last=config.getoption("--channels-last", default=False),
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    if SESSION_KEY not in config.stash:
        return []
    s = config.stash[SESSION_KEY].settings
    workers = getattr(config.option, "numprocesses", None)
    dist = (f"claims: distributed over {workers} xdist workers (--dist {config.option.dist}); each worker picks "
            "its device (one GPU per worker on CUDA: gwK -> cuda:K mod N) and says so in the report") if workers else None
    plan_lines: list[str] = []
    if workers and SESSION_KEY in config.stash:  # the controller collects nothing: plan the --claim selection
        from .plan import make_plan

        cs = config.stash[SESSION_KEY]
        wanted = config.getoption("claim_ids", default=None) or list(registry.CLAIMS)
        plan_lines = make_plan(wanted, seeds=s.seeds, model_source=s.model_source, quality=cs.quality_mode,
                               rounds=s.timing_rounds, atlas=config.getoption("--atlas"), trained=s.trained).lines()
        plan_lines.append("claims plan: no time estimate under xdist (the controller loads no model); "
                          "--claims-plan without -n calibrates here")
    overrides = [f"claims: {c.id}: {what} {name + ' ' if name else ''}{old!r} -> {new!r} (--claims-file; built-in "
                 f"value {old!r})" for c in registry.CLAIMS.values() for what, name, old, new in c.overrides]
    return [line for line in [
        f"claims: model={s.model_kind} ({s.model_reason}) source={s.model_source}",
        f"claims: catalogue {', '.join(registry.FILES)}",
        *overrides,
        f"claims: device={s.device} dtype={s.dtype_name} seeds={s.seeds} seed-base={s.seed_base} "
        f"timing-rounds={s.timing_rounds} deterministic={s.deterministic} "
        f"report={s.report_path}",
        f"claims: quality={config.stash[SESSION_KEY].quality_mode} (--quality {config.stash[SESSION_KEY].quality_arg}, "
        f"--clip-model {config.stash[SESSION_KEY].clip_arg})",
        dist,
        (f"claims: U-Net{' compiled (torch.compile)' if s.compile else ''}"
         f"{' in channels_last' if s.channels_last else ''}; the timing claims time this U-Net"
         if s.compile or s.channels_last else None),
        *plan_lines,
    ] if line]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """The plan of the selected claims (sampler_claims.planning)."""
    from .planning import plan_run

    plan_run(session)


def pytest_report_collectionfinish(config: pytest.Config, start_path: Any, items: list[pytest.Item]) -> list[str]:
    from .planning import plan_lines

    return plan_lines(config)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """--claims-plan: the plan is printed with the collection; run nothing."""
    if session.config.getoption("--claims-plan", default=False):
        return True
    return None


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def claims_session(request: pytest.FixtureRequest) -> ClaimsSession:
    return request.config.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def settings(claims_session: ClaimsSession) -> Settings:
    return claims_session.settings


@pytest.fixture(scope="session")
def model(claims_session: ClaimsSession) -> LoadedModel:
    return claims_session.model()


@pytest.fixture(scope="session")
def pipe(model: LoadedModel):  # noqa: ANN201 - StableDiffusionPipeline
    return model.pipe


@pytest.fixture(scope="session")
def engine(claims_session: ClaimsSession) -> Engine:
    return claims_session.engine()


@pytest.fixture(scope="session")
def prompts(settings: Settings) -> Prompts:
    from .prompts import Prompts

    return Prompts(tiny_world=settings.model_kind == "tiny", seed_base=settings.seed_base)


@pytest.fixture(scope="session")
def roster(prompts: Prompts, settings: Settings) -> Roster:
    """The --seeds prompt-seed pairs every statistical claim shares (so their generations are shared)."""
    from .quality import Roster

    texts, seeds = prompts.roster("exercise1", settings.seeds)
    return Roster(texts, seeds)


@pytest.fixture
def claim_roster(claim: ClaimRecorder, prompts: Prompts, settings: Settings) -> Roster:
    """The roster this claim's registry entry asks for: the --seeds roster, or for a claim that pairs with DDPM
    registry.DDPM_SEEDS times it. Its first --seeds pairs are the shared roster's, so the engine generates only
    the rest again."""
    from .quality import Roster

    texts, seeds = prompts.roster("exercise1", registry.claim_seeds(claim.claim, settings.seeds))
    return Roster(texts, seeds)


@pytest.fixture
def runs(claim: ClaimRecorder, engine: Engine, prompts: Prompts, settings: Settings) -> Any:
    """The claim's declared runs by name (sampler_claims.claim_runs.ClaimRuns): `runs.generate("ddim")`."""
    from .claim_runs import ClaimRuns

    return ClaimRuns(claim.claim, engine, prompts, settings.seeds)


@pytest.fixture
def quality(claim: ClaimRecorder, claims_session: ClaimsSession) -> Quality:
    """The quality metric of the run (--quality): the checker, or CLIP score (inconclusive with the fix when no
    CLIP weights can be had: the run never fails over it). Built once per session; it asks for `claim` first so
    that a quality claim on random weights is skipped before any CLIP is loaded."""
    return claims_session.quality()


@pytest.fixture
def quality_claim(claim: ClaimRecorder, claims_session: ClaimsSession, engine: Engine, roster: Roster) -> QualityClaim:
    """A quality claim's metric, its control and (on the CLIP path) the convergence basis, as the claim's registry
    entry names them: each computed once per session and value (after `claim`, so random weights skip before
    generating anything)."""
    from .quality_claim import QualityClaim

    control, good, bad = claims_session.quality_control(claim.claim, engine, roster)
    return QualityClaim(claim, claims_session.quality(), control, good, bad, claim.t("quality_control"),
                        claims_session.convergence(claim.claim, engine, roster))


@pytest.fixture
def timing_rounds(request: pytest.FixtureRequest, engine: Engine, prompts: Prompts, settings: Settings) -> Rounds:
    """The run's interleaved timing rounds (sampler_claims.timing): measured by the first timing claim that
    asks for them, through its pytest-benchmark fixture, and shared by every later one."""
    from .timing import TIMING_ROLE, session_rounds

    prompt, seed = prompts.single(TIMING_ROLE)
    cs = request.config.stash[SESSION_KEY]
    before = engine.tally.copy()
    rounds = session_rounds(request, engine, prompt, seed, settings.timing_rounds)
    if cs.rounds is None:  # measured just now: DDPM@1000's per-round time is the unit of cost
        cs.rounds = rounds
        cs.timing_done(before)
    return rounds


@pytest.fixture
def claim(request: pytest.FixtureRequest, claims_session: ClaimsSession) -> ClaimRecorder:
    """The recorder of the claim named by the test's @pytest.mark.claim(id)."""
    marker = request.node.get_closest_marker("claim")
    if marker is None:
        raise pytest.UsageError(f"{request.node.nodeid} uses the claim fixture without @pytest.mark.claim(id)")
    recorder = claims_session.results.recorder(marker.args[0])
    if recorder.claim.needs_trained_model and not claims_session.settings.trained:
        recorder.skip(f"needs a trained model: {claims_session.settings.model_kind} has random weights, so "
                      "quality is meaningless")
    return recorder


# --------------------------------------------------------------------------- outcomes and the report


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """With -n and no --dist, distribute by xdist_group (loadgroup): the claims that share generations then
    run on one worker and each generation is still computed once. --dist given explicitly wins.

    --claims-list prints the catalogue here and ends the run, before pytest_configure: no settings are resolved,
    no model loads and torch is never imported."""
    if config.getoption("--claims-list", default=False):
        from .catalogue import CatalogueError
        from .listing import claims_listing

        try:
            files = registry.use_files(config.getoption("claims_files", default=None) or [])
        except CatalogueError as exc:
            print(f"ERROR: --claims-file: {exc}")
            return int(pytest.ExitCode.USAGE_ERROR)
        print(claims_listing(registry.CLAIMS.values()))
        print(f"(read from {', '.join(files)})")
        return 0
    if config.getoption("--claims-plan", default=False):  # the plan runs nothing: no workers to start
        config.option.numprocesses = None
        config.option.dist = "no"
        return
    if getattr(config.option, "numprocesses", None) and getattr(config.option, "dist", "no") == "no":
        config.option.dist = "loadgroup"


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With --dist loadgroup, group claim tests by the registry's groups (sampler_claims.distribute)."""
    if config.getvalue("dist") == "loadgroup":
        from .distribute import make_scheduler

        return make_scheduler(config, log)
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the xdist_group marks added here (pytest < 9)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    from .negatives import MODULE_PREFIX, problems

    modules = {id(m): m for m in (getattr(it, "module", None) for it in items)
               if m is not None and m.__name__.rsplit(".", 1)[-1].startswith(MODULE_PREFIX)}
    wrong = problems(modules.values())
    if wrong:
        raise pytest.UsageError("negative controls (@pytest.mark.negative_of):\n  " + "\n  ".join(wrong))
    if SESSION_KEY not in config.stash:
        return
    results = config.stash[SESSION_KEY].results
    wanted = config.getoption("claim_ids", default=None) or []
    for cid in wanted:
        if cid not in registry.CLAIMS:
            raise pytest.UsageError(f"--claim {cid!r} is not a claim id; known: {', '.join(registry.CLAIMS)}")
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("claim")
        if marker is None:
            (drop if wanted else keep).append(item)
            continue
        claim = registry.get(marker.args[0])  # unknown ids fail collection loudly
        if wanted and claim.id not in wanted:
            drop.append(item)
            continue
        keep.append(item)
        results.collected.add(claim.id)
        item.add_marker(pytest.mark.xdist_group(claim.group))
        if results.records[claim.id].expected == registry.REFUTED and "claim" in getattr(item, "fixturenames", ()):
            # The measured finding: the lesson's form fails. Strict, so a change of verdict turns the
            # run red; raises=ClaimRefuted, so only the refuted verdict counts, never a crash.
            item.add_marker(pytest.mark.xfail(strict=True, raises=ClaimRefuted,
                                              reason=f"refuted: {claim.expected_why}"))
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if worker_id(config) is not None:  # xdist: heaviest claim groups first (sampler_claims.distribute)
        from .distribute import cost_rank

        items.sort(key=lambda it: cost_rank(registry.get(it.get_closest_marker("claim").args[0]).group)
                   if it.get_closest_marker("claim") else cost_rank(None))


def pytest_sessionstart(session: pytest.Session) -> None:
    """Progress lines (sampler_claims.progress): through the terminal reporter here, or, on an xdist worker, on
    the test reports for the controller to print; none under -q -q."""
    from .progress import Progress, ReportSink, TerminalSink

    config = session.config
    cs = config.stash.get(SESSION_KEY, None)
    if cs is None:
        return
    if worker_id(config) is not None:
        cs.progress = Progress(ReportSink(), live=False)
    elif config.get_verbosity() > -2:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            sink = TerminalSink(reporter, config.pluginmanager.get_plugin("capturemanager"))
            cs.progress = Progress(sink, live=sink.tty, run_left=cs.run_left)
            if sink.tty:
                config.pluginmanager.register(LiveLineGuard(sink), "sampler-claims-live-line")


class LiveLineGuard:
    """Registered with a terminal's progress sink: no live progress text is on the screen when pytest writes a
    test's status (a generation's end erases it already; this catches one that ended without telling)."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.sink.clear()


def _stop_on_oom() -> Iterator[None]:
    try:
        return (yield)
    except Exception as exc:
        from .memory import OutOfDeviceMemory  # imported on an error only: it imports torch

        if not isinstance(exc, OutOfDeviceMemory):
            raise
        # Every later claim would run out of memory the same way: stop the run with one usage error (exit
        # code 4) that names the fix, rather than a traceback per test. The report is still written.
        pytest.exit(f"sampler-claims: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Fixtures generate too (the roster, the quality control): out of memory there ends the run cleanly. The
    progress lines of this test's generations are headed by its claim."""
    cs = item.config.stash.get(SESSION_KEY, None)
    if cs is not None and cs.progress is not None:
        marker = item.get_closest_marker("claim")
        cs.progress.context = marker.args[0] if marker else item.name
    if cs is not None and (marker := item.get_closest_marker("claim")) is not None:
        cs.enter_claim(marker.args[0])
        if marker and not cs.plan_started:
            cs.start_clock()
    return (yield from _stop_on_oom())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    return (yield from _stop_on_oom())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Put the claim's outcome (and, on an xdist worker, its whole record) on the test report; the
    outcome is read back in pytest_runtest_logreport, which runs where the report is written."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    refuted_as_expected = (hasattr(report, "wasxfail") and call.excinfo is not None
                           and call.excinfo.errisinstance(ClaimRefuted))
    if refuted_as_expected:
        report.wasxfail = str(call.excinfo.value)  # the measured reason, not only the registry's
    marker = item.get_closest_marker("claim")
    if marker is not None and SESSION_KEY in item.config.stash:  # the claims' measured time ends with the last
        item.config.stash[SESSION_KEY].claims_finished = __import__("time").perf_counter()
    elif SESSION_KEY in item.config.stash:  # another test (tests/ in CI's one session): not the claims' cost
        item.config.stash[SESSION_KEY].other_tests_s += report.duration
    progress = item.config.stash[SESSION_KEY].progress if SESSION_KEY in item.config.stash else None
    if worker_id(item.config) is not None and progress is not None:
        lines = progress.sink.drain()
        if lines:
            report.user_properties.append((PROGRESS_PROP, lines))
    if marker is None or SESSION_KEY not in item.config.stash:
        return
    if not (report.when == "call" or (report.when == "setup" and not report.passed)):
        return
    state, message = claim_state(report, call)
    cs: ClaimsSession = item.config.stash[SESSION_KEY]
    cid = marker.args[0]
    rec = cs.results.records[cid]
    shown = shown_verdict(state, rec.verdict)
    if shown is not None:
        shorten_reason(report, shown)
    rec.ran_on = {"worker": worker_id(item.config) or "main", "device": cs.settings.device}
    chunks = cs.drain_chunks(cid)
    if chunks:
        from .memory import chunk_summary

        rec.ran_on["chunks"] = chunk_summary(chunks)
    rec.ran_on["unet_evaluations"] = cs.evaluations(cid)
    report.user_properties.append((CLAIM_PROP, {"id": cid, "state": state, "message": message, "shown": shown}))
    if worker_id(item.config) is not None:
        report.user_properties.append((RECORD_PROP, record_payload(rec)))


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, Any] | None:
    """A claim test shows its verdict (sampler_claims.outcomes.teststatus)."""
    return teststatus(report)
