"""The prompts and seeds each exercise uses, per model.

SD 1.5 gets the lesson's own prompts and seeds. The embedded model only knows its shapes world, so it
gets prompts from its vocabulary in the same roles; statistical claims walk a fixed roster of
prompt-seed pairs so that adherence is measured over varied prompts, not one.
"""
from __future__ import annotations

from .tinyshapes.vocab import COLORS, SHAPES, caption

#: role -> (prompt, seed) as the lesson's exercises use them.
LESSON = {
    "exercise1": ("a cat sitting on a beach at sunset", 42),
    "exercise2": ("a lighthouse on a rocky cliff", 123),
    "exercise3": ("a cozy cabin in a snowy forest at night, warm light from windows", 77),
    "exercise4": ("a cat sitting on a beach at sunset", 42),
}

#: The same roles on the embedded model, with the lesson's seeds.
TINY = {
    "exercise1": (caption("circle", "yellow"), 42),
    "exercise2": (caption("triangle", "white"), 123),
    "exercise3": (caption("diamond", "orange"), 77),
    "exercise4": (caption("square", "green"), 42),
}


def _tiny_roster(n: int, start: int = 0) -> list[str]:
    """n captions in a fixed, varied order from position `start`: shapes cycle fastest, and every
    run of len(SHAPES) x len(COLORS) consecutive positions holds each caption of the world once."""
    colors = list(COLORS)
    out = []
    for k in range(start, start + n):
        shape = SHAPES[k % len(SHAPES)]
        fg = colors[(3 * (k // len(SHAPES)) + k) % len(colors)]
        out.append(caption(shape, fg))
    return out


class Prompts:
    """Prompt choice for one model kind: the embedded world or the lesson's own prompts.

    `seed_base` (--seed-base) moves every seed of the run, and the tiny world's roster of captions with
    it, to a fresh range: a replication of the whole run on prompt-seed pairs it has never seen.
    """

    def __init__(self, tiny_world: bool, seed_base: int = 0) -> None:
        self.tiny_world = tiny_world
        self.seed_base = seed_base
        self.table = TINY if tiny_world else LESSON

    def single(self, role: str) -> tuple[str, int]:
        prompt, seed = self.table[role]
        return prompt, seed + self.seed_base

    def roster(self, role: str, n: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """n (prompt, seed) pairs: varied captions on the tiny model, the lesson's prompt otherwise."""
        prompt, seed = self.single(role)
        seeds = tuple(seed + i for i in range(n))
        prompts = tuple(_tiny_roster(n, self.seed_base)) if self.tiny_world else (prompt,) * n
        return prompts, seeds
