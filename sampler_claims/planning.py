"""The run's plan before the first generation: the selected claims' declared runs counted (sampler_claims.plan), timed
by a calibration on the run's engine (sampler_claims.calibration), shrunk to --budget, and the lines the header
prints about it. The plugin's collection hooks call these."""
from __future__ import annotations

import pytest

from .outcomes import worker_id
from .progress import plural
from .session import SESSION_KEY, ClaimsSession


def plan_run(session: pytest.Session) -> None:
    """The cost plan of the selected claims, in the order their tests run, before the first generation: counted
    from their declared runs, timed by a calibration on the run's engine; --budget shrinks the roster to fit."""
    config = session.config
    cs: ClaimsSession | None = config.stash.get(SESSION_KEY, None)
    if cs is None or worker_id(config) is not None:
        return
    ids = list(dict.fromkeys(it.get_closest_marker("claim").args[0] for it in session.items
                             if it.get_closest_marker("claim")))
    if not ids:
        return
    from dataclasses import replace

    from .calibration import calibrate
    from .plan import budget_seeds, fmt_time, likely_inconclusive, make_plan

    s = cs.settings

    def plan_for(seeds: int, calibration=None):  # noqa: ANN001, ANN202
        return make_plan(ids, seeds=seeds, model_source=s.model_source, quality=cs.quality_mode,
                         rounds=s.timing_rounds, atlas=config.getoption("--atlas"), calibration=calibration,
                         trained=s.trained)

    calibration = None
    if plan_for(s.seeds).evaluations and not config.option.collectonly:  # --collect-only loads no model
        if s.compile:  # the calibration compiles first: say so before the wait
            from .calibration import COMPILE_GRAPHS, compile_estimate

            est = compile_estimate(s.model_kind, s.device)
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None and config.get_verbosity() > -2:
                reporter.write_line(f"claims plan: --compile: compiling the U-Net ({COMPILE_GRAPHS} graphs) in the "
                                    "calibration, " + (f"about {fmt_time(est)} here" if est is not None else
                                                       "not yet measured for this model and device"))
        try:
            from .calibration import overhead_of

            # the roster as the engine runs it, and one seed
            calibration = calibrate(cs.engine(), s.seeds, overhead=overhead_of(s.model_kind, s.device))
        except pytest.fail.Exception:
            calibration = None  # the model does not load: every claim says why; the plan counts only
    budget = config.getoption("--budget", default=None)
    if budget and calibration is not None:
        n = budget_seeds(lambda k: (plan_for(k, calibration).seconds or 0.0) <= budget * 60, s.seeds) or 1
        planned = plan_for(n, calibration)
        cs.budget = {"minutes": budget, "seeds_requested": s.seeds, "seeds": n,
                     "planned": fmt_time(planned.seconds) + ("" if (planned.seconds or 0) <= budget * 60 else
                                                             ": over the budget even at one seed"),
                     "likely_inconclusive": likely_inconclusive(ids, n)}
        if n < s.seeds:
            cs.settings = replace(s, seeds=n)
    cs.plan = plan_for(cs.settings.seeds, calibration)
    cs.plan_started = 0.0  # the clock starts with the first claim test (tests/ may run first)


def plan_lines(config: pytest.Config) -> list[str]:
    """What the header says about the plan, the cost it plans and the budget."""
    cs: ClaimsSession | None = config.stash.get(SESSION_KEY, None)
    if cs is None or cs.plan is None:
        return []
    lines = cs.plan.lines()
    cal = cs.plan.calibration
    if cal is not None and cs.plan.seconds is not None:
        from .calibration import Cost

        lines.append(Cost(cs.plan.seconds + cal.seconds, cal.unit_s, "calibration").line("claims cost planned")
                     + " (the claims' planned time and the calibration; loading the model comes on top)")
    b = cs.budget
    if b:
        if b["seeds"] < b["seeds_requested"]:
            lines.append(f"claims budget: {b['minutes']:g} min -> --seeds {b['seeds']} instead of "
                         f"{b['seeds_requested']} (planned {b['planned']})")
        else:
            lines.append(f"claims budget: {b['minutes']:g} min fits the {plural(b['seeds'], 'seed')} asked for "
                         f"(planned {b['planned']})")
        for cid, need in b["likely_inconclusive"].items():
            lines.append(f"claims budget:   {cid} likely inconclusive: the power calculation wants --seeds {need}")
    if config.getoption("--claims-plan", default=False):
        lines.append("claims plan: --claims-plan: nothing generated; run without it to measure")
    return lines
