"""A pytest plugin for the plan-equals-run test: the claims run against a recording engine that generates nothing.

The session's model loads as usual, then its U-Net's forward is replaced by a cheap deterministic function of its
input (no network weights run), so every pipeline, scheduler, callback, cache and ledger path of a claims run is
the real one, at a fraction of the cost; the images mean nothing and the verdicts are not read.
"""
from __future__ import annotations

from typing import Any

import pytest
import torch

from sampler_claims.session import SESSION_KEY


def stub_forward(sample: torch.Tensor, timestep: Any, encoder_hidden_states: Any = None, *args: Any,
                 return_dict: bool = True, **kwargs: Any) -> Any:
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    out = torch.sin(sample * 1.7 + 0.3) * 0.8
    return UNet2DConditionOutput(sample=out) if return_dict else (out,)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    cs = config.stash.get(SESSION_KEY, None)
    if cs is None:
        return
    load = cs.model

    def model() -> Any:
        m = load()
        if not getattr(m.pipe.unet, "_stubbed", False):
            m.pipe.unet.forward = stub_forward
            m.pipe.unet._stubbed = True
        return m

    cs.model = model
