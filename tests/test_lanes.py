"""The chunks a CPU generation runs in (sampler_claims.lanes): the engine runs them, the plan prices them."""
from __future__ import annotations

import numpy as np
import pytest

from sampler_claims.lanes import lane_chunks, waves


@pytest.mark.parametrize("n,lanes", [(1, 2), (2, 2), (7, 2), (32, 2), (64, 3), (5, 8)])
def test_one_share_per_lane_as_array_split(n: int, lanes: int) -> None:
    expected = [(int(a[0]), len(a)) for a in np.array_split(np.arange(n), min(lanes, n))]
    assert lane_chunks(n, lanes) == expected


def test_max_batch_and_whole() -> None:
    assert lane_chunks(10, 2, max_batch=4) == [(0, 4), (4, 4), (8, 2)]
    assert lane_chunks(10, 2, whole=True) == [(0, 10)]
    assert waves(3, 2) == 2 and waves(2, 2) == 1 and waves(1, 4) == 1
