"""How a CPU generation's seeds split into chunks and lanes: one home for the engine, which runs them, and the
plan's pricing (sampler_claims.calibration), which must count the same pipeline calls."""
from __future__ import annotations

import math


def lane_chunks(n: int, lanes: int, max_batch: int = 0, whole: bool = False) -> list[tuple[int, int]]:
    """(first seed, seeds) of each pipeline call's chunk for `n` seeds: one chunk when `whole`, chunks of
    `max_batch` (--max-batch) when set, else one share per lane, the first shares one seed longer where `n` does
    not divide (as numpy's array_split)."""
    if whole:
        return [(0, n)]
    if max_batch:
        return [(a, min(max_batch, n - a)) for a in range(0, n, max_batch)]
    k = max(1, min(lanes, n))
    size, extra = divmod(n, k)
    out, start = [], 0
    for i in range(k):
        count = size + (1 if i < extra else 0)
        out.append((start, count))
        start += count
    return out


def waves(chunks: int, lanes: int) -> int:
    """Rounds of pipeline calls one after another: `chunks` chunks run `lanes` at a time."""
    return math.ceil(chunks / max(1, min(lanes, chunks)))
