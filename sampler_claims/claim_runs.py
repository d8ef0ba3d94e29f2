"""A claim test's runs, by name: `runs.generate("ddim")` makes the generation the claim's catalogue entry declares,
over the seeds it declares (the roster, the claim's longer roster, the exercise's one prompt and seed, or the first
N roster seeds), cached or not as declared. The test names a run; the catalogue says what it is.
"""
from __future__ import annotations

from typing import Any

from . import registry
from .engine import Engine, Generation, Request
from .prompts import Prompts
from .runs import RunSpec


class ClaimRuns:
    """The runs of one claim, bound to the run's engine, prompts and --seeds."""

    def __init__(self, claim: registry.Claim, engine: Engine, prompts: Prompts, seeds: int) -> None:
        self.claim = claim
        self.engine = engine
        self.prompts = prompts
        self.n = seeds

    def __getitem__(self, name: str) -> RunSpec:
        return self.claim.run(name)

    def names(self, **where: Any) -> list[str]:
        """The claim's run names whose fields equal `where` (e.g. sampler="ddim"), in declaration order."""
        return [n for n, r in self.claim.runs.items() if all(getattr(r, k) == v for k, v in where.items())]

    @property
    def role(self) -> str:
        """Which prompt table entry a single-seed run takes (registry.Claim.single_role)."""
        return self.claim.single_role

    def inputs(self, name: str) -> tuple[str | tuple[str, ...], tuple[int, ...]]:
        """The prompt(s) and seeds of run `name`, as its `seeds` field declares them."""
        run = self.claim.run(name)
        if run.seeds == "single":
            prompt, seed = self.prompts.single(self.role)
            return prompt, (seed,)
        if run.seeds == "claim":
            n = registry.claim_seeds(self.claim, self.n)
        elif run.seeds in ("roster", "pairs"):
            n = self.n
        else:
            n = int(run.seeds)
        return self.prompts.roster("exercise1", n)

    def request(self, name: str, **changes: Any) -> Request:
        """The engine request of run `name`; `changes` set what the test drives itself (latents_seed, seeds,
        prompt)."""
        prompt, seeds = self.inputs(name)
        seeds = changes.pop("seeds", seeds)
        prompt = changes.pop("prompt", prompt)
        return self.claim.run(name).request(seeds, prompt, **changes)

    def generate(self, name: str, *, generators: Any = None, callback: Any = None, **changes: Any) -> Generation:
        """Make (or fetch from the session's cache) run `name`."""
        run = self.claim.run(name)
        return self.engine.generate(self.request(name, **changes), cached=run.cached, generators=generators,
                                    callback=callback)
