"""A claim's runs: the generations it declares in the catalogue, by name.

A run is one pipeline configuration (a sampler by short name, its steps, scheduler overrides, guidance) over a set
of seeds, with what it keeps (intermediates, latents). A claim's test asks for its runs by name
(`Claim.run(name)`), the plan counts exactly the declared runs, and nothing else lists a claim's configurations.
Controls and references are runs too: the quality sets' runs follow from their controls (`set_runs`).

This module imports no torch: the catalogue is read and checked at start-up, before anything heavy loads.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .names import LABELS

#: What `seeds` may say: the --seeds roster; the claim's longer roster (--seeds times its ddpm_seeds or score_seeds);
#: the exercise's one prompt and seed; the roster's seeds two by two (one frame strip per pair, zt-interpolation);
#: or a number N (the roster's first N seeds).
SEED_SETS = ("roster", "claim", "single", "pairs")
#: How a test drives the generators of a run, where it is not the engine's own one-generator-per-seed (the plan
#: counts them alike; the name says what the images mean).
MODES = ("", "fixed-zt", "reseeded", "interpolation", "shared-generator")
#: When a run is made: always, only on a trained model, only with --atlas, only on the CLIP path.
ONLY = ("", "trained", "atlas", "clip")
#: A sampler value that stands for every scheduler compatible with the model's stock one (steps-are-calls).
COMPATIBLES = "compatibles"
#: How often a run repeats: a number, or "rounds" (once per timing round, --timing-rounds).
ROUNDS = "rounds"


@dataclass(frozen=True)
class RunSpec:
    """One declared generation of a claim (see the module docstring). Hashable, so equal runs of two claims are
    recognised as one generation (the engine computes it once, the plan counts it once)."""

    name: str
    sampler: str
    steps: int
    overrides: tuple[tuple[str, Any], ...] = ()
    guidance: float = 7.5
    eta: float = 0.0
    seeds: str | int = "roster"
    capture: bool = False
    output: str = "np"
    cached: bool = True
    repeat: int | str = 1
    mode: str = ""
    only: str = ""

    @property
    def label(self) -> str:
        """As the report names it, e.g. 'DPM-Solver@20', 'DDIM@50 (guidance 1)'."""
        base = f"{LABELS.get(self.sampler, self.sampler)}@{self.steps}"
        extra = [f"{k}={v}" for k, v in self.overrides]
        if self.guidance != DEFAULTS["guidance"]:
            extra.append(f"guidance {self.guidance:g}")
        if self.eta:
            extra.append(f"eta {self.eta:g}")
        return base + (f" ({', '.join(extra)})" if extra else "")

    @property
    def config(self) -> tuple[Any, ...]:
        """What decides the images apart from the seeds: two runs with equal configs and seeds are one generation."""
        return (self.sampler, self.steps, self.overrides, self.guidance, self.eta, self.capture, self.output,
                self.mode)

    def times(self, rounds: int) -> int:
        return rounds if self.repeat == ROUNDS else int(self.repeat)

    def images(self, seeds: int, claim_seeds: int, frames: int = 0) -> int:
        """Images one repetition makes at --seeds `seeds`, for a claim whose longer roster is `claim_seeds`."""
        if self.seeds == "roster":
            return seeds
        if self.seeds == "claim":
            return claim_seeds
        if self.seeds == "single":
            return 1
        if self.seeds == "pairs":  # one strip of frames plus the two seeds' own images per pair of roster seeds
            return (seeds // 2) * (frames + 2)
        return int(self.seeds)

    def spec(self) -> Any:
        """The scheduler (sampler_claims.schedulers.SchedulerSpec) this run makes, from the stock config."""
        from .schedulers import SchedulerSpec

        return SchedulerSpec.of(self.sampler, **dict(self.overrides))

    def request(self, seeds: tuple[int, ...], prompt: str | tuple[str, ...], **changes: Any) -> Any:
        """The engine request of this run over `seeds` (sampler_claims.engine.Request); `changes` set fields the
        run leaves to the test (e.g. latents_seed for a fixed z_T)."""
        from .engine import Request

        fields = dict(guidance=self.guidance, eta=self.eta, capture=self.capture, output=self.output)
        fields.update(changes)
        return Request(self.spec(), self.steps, tuple(seeds), prompt, **fields)


#: The catalogue's defaults for a run's fields (sampler_claims/catalogue/defaults.toml), filled in by the loader.
DEFAULTS: dict[str, Any] = {"guidance": 7.5}

#: The keys a run may declare, with the type each takes.
RUN_KEYS: dict[str, type | tuple[type, ...]] = {
    "sampler": str, "steps": int, "overrides": dict, "guidance": (int, float), "eta": (int, float),
    "seeds": (str, int), "capture": bool, "output": str, "cached": bool, "repeat": (int, str), "mode": str,
    "only": str,
}


class RunError(ValueError):
    """A declared run that cannot be made; the message names what is available."""


def make_run(name: str, entry: dict[str, Any], where: str) -> RunSpec:
    """A RunSpec from a catalogue entry, checked: unknown keys, samplers, seed sets, modes and conditions are
    errors that list what is available."""
    if not isinstance(entry, dict):
        raise RunError(f"{where}: run {name!r} must be a table such as {{ sampler = \"ddim\", steps = 50 }}")
    unknown = sorted(set(entry) - set(RUN_KEYS))
    if unknown:
        raise RunError(f"{where}: run {name!r} has unknown key(s) {', '.join(unknown)}; a run takes: "
                       f"{', '.join(RUN_KEYS)}")
    for key in ("sampler", "steps"):
        if key not in entry:
            raise RunError(f"{where}: run {name!r} needs {key!r}")
    for key, value in entry.items():
        if not isinstance(value, RUN_KEYS[key]) or (key == "steps" and isinstance(value, bool)):
            raise RunError(f"{where}: run {name!r}: {key} = {value!r} has the wrong type")
    sampler = entry["sampler"]
    if sampler not in LABELS and sampler != COMPATIBLES:
        raise RunError(f"{where}: run {name!r}: unknown sampler {sampler!r}; known: {', '.join(LABELS)}, "
                       f"{COMPATIBLES} (every scheduler compatible with the model's stock one)")
    if entry["steps"] < 1:
        raise RunError(f"{where}: run {name!r}: steps must be at least 1")
    seeds = entry.get("seeds", "roster")
    if isinstance(seeds, str) and seeds not in SEED_SETS:
        raise RunError(f"{where}: run {name!r}: seeds = {seeds!r}; use one of {', '.join(SEED_SETS)} or a number")
    for key, allowed in (("mode", MODES), ("only", ONLY), ("output", ("np", "latent"))):
        if entry.get(key, allowed[0]) not in allowed:
            raise RunError(f"{where}: run {name!r}: {key} = {entry[key]!r}; use one of "
                           f"{', '.join(repr(a) for a in allowed)}")
    repeat = entry.get("repeat", 1)
    if isinstance(repeat, str) and repeat != ROUNDS:
        raise RunError(f"{where}: run {name!r}: repeat = {repeat!r}; use a number or {ROUNDS!r}")
    return RunSpec(
        name=name, sampler=sampler, steps=int(entry["steps"]),
        overrides=tuple(sorted(entry.get("overrides", {}).items())),
        guidance=float(entry.get("guidance", DEFAULTS["guidance"])), eta=float(entry.get("eta", 0.0)),
        seeds=seeds, capture=bool(entry.get("capture", False)), output=entry.get("output", "np"),
        cached=bool(entry.get("cached", True)), repeat=repeat, mode=entry.get("mode", ""),
        only=entry.get("only", ""),
    )
