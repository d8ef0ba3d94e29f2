"""sd15-random: SD 1.5's real architecture with random weights, built from the shipped configs.

On the CPU it runs a 64x64, 2-step smoke generation: proof that the real-scale path (the one the GPU
check times at 512x512) loads and samples, without weights or network.
"""
from __future__ import annotations

import pytest
import torch

from sampler_claims import options
from sampler_claims.engine import Engine, Request
from sampler_claims.models import load
from sampler_claims.schedulers import SchedulerSpec

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sd15_random():
    settings = options.resolve(model="sd15-random", device="cpu", size=64)
    return load(settings)


def test_components_have_sd15_sizes(sd15_random) -> None:
    pipe = sd15_random.pipe
    assert pipe.unet.config.block_out_channels == [320, 640, 1280, 1280]
    assert pipe.unet.config.cross_attention_dim == pipe.text_encoder.config.hidden_size == 768
    n_params = sum(p.numel() for p in pipe.unet.parameters())
    assert 850e6 < n_params < 870e6, n_params
    assert type(pipe.scheduler).__name__ == "PNDMScheduler" and pipe.scheduler.config.steps_offset == 1


def test_smoke_generation_at_64px_two_steps(sd15_random) -> None:
    engine = Engine(sd15_random.pipe, model_key="sd15-random-smoke", size=64, device="cpu", check=False)
    g = engine.generate(Request(SchedulerSpec.of("ddim"), 2, (0,), "a red circle"))
    assert g.images.shape == (1, 64, 64, 3) and g.latents.shape == (1, 4, 8, 8)
    assert g.unet_batch_sizes == [2, 2] and torch.isfinite(g.latents).all()


def test_compile_runs_sd15s_architecture_on_the_cpu_like_eager(sd15_random) -> None:
    """--compile on SD 1.5's U-Net (inductor on the CPU), one seed at 64x64, two steps: the same U-Net calls and
    final latents within float32 rounding of eager (compilation fuses and reorders the arithmetic)."""
    pipe = sd15_random.pipe
    req = Request(SchedulerSpec.of("ddim"), 2, (0,), "a red circle")
    eager = Engine(pipe, model_key="sd15-random-eager", size=64, device="cpu", check=False).generate(req)
    try:
        compiled = Engine(pipe, model_key="sd15-random-compiled", size=64, device="cpu", check=False, compile=True)
        assert compiled.compiled and getattr(pipe.unet, "_sampler_claims_compiled", False)
        g = compiled.generate(req)
    finally:  # the module's other tests keep the eager U-Net
        del pipe.unet.forward
        del pipe.unet._sampler_claims_compiled
    assert g.unet_batch_sizes == eager.unet_batch_sizes == [2, 2], "the counting hook still sees every call"
    scale = float(eager.latents.abs().max())
    assert torch.allclose(g.latents, eager.latents, rtol=1e-3, atol=1e-4 * max(scale, 1.0)), (
        float((g.latents - eager.latents).abs().max()), scale)
