"""Claim groups for pytest-xdist: the claims that share generations or the timing rounds go to one worker.

Why a scheduler of our own: xdist's loadgroup tells the controller a test's `xdist_group` by appending
"@group" to its node id on the worker, and pytest 9 no longer lets a plugin change node ids (its ids
became structured), so the grouping is silently lost (pytest-xdist issue #1386). The controller only
sees node ids, so this scheduler derives each claim test's group from its id instead: a claim's deciding
test is named after the claim (claim "ddim-eta" -> test_ddim_eta; tests/test_verdict.py keeps that so).
Everything else is scheduled as xdist's loadgroup would (each test its own unit, or its "@group").
"""
from __future__ import annotations

import re

from . import registry

#: test function name -> the claim's xdist group
_GROUP_BY_TEST = {"test_" + cid.replace("-", "_"): c.group for cid, c in registry.CLAIMS.items()}


def test_name(claim_id: str) -> str:
    """The deciding test's function name for a claim id."""
    return "test_" + claim_id.replace("-", "_")


def group_of(nodeid: str) -> str | None:
    """The claim group of a claims/ test node id, None for any other test."""
    if "::" not in nodeid:
        return None
    name = re.split(r"[\[@]", nodeid.rsplit("::", 1)[1], maxsplit=1)[0]
    return _GROUP_BY_TEST.get(name)


#: Groups heaviest first (measured on the embedded model): xdist hands out groups in the order they first
#: appear in the collection, so putting the heavy ones first lets the longest start first and the short
#: ones fill in behind them (longest-processing-time-first).
COST_ORDER = ("roster-ddpm", "roster", "timing")


def cost_rank(item_group: str | None) -> int:
    return COST_ORDER.index(item_group) if item_group in COST_ORDER else len(COST_ORDER)


def make_scheduler(config, log):  # noqa: ANN001, ANN201 - xdist's types, imported lazily
    """A LoadGroupScheduling whose groups come from the claim registry (see the module docstring), handed
    out in collection order (the workers sort the heaviest groups first) rather than by test count."""
    from xdist.scheduler import LoadGroupScheduling

    config.option.loadscopereorder = False
    class ClaimGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            group = group_of(nodeid)
            return f"claims:{group}" if group else super()._split_scope(nodeid)

    return ClaimGroupScheduling(config, log)
