"""The generation engine: batching, the cache, U-Net counting, draws, capture and the guard."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from sampler_claims.counters import count_random_draws, count_unet_calls
from sampler_claims.engine import Engine, Request, cpu_generators
from sampler_claims.metrics import GenerationError
from sampler_claims.schedulers import SCHEDULERS, SchedulerSpec, make_scheduler

PROMPT = "a red circle"


def req(name: str = "ddim", steps: int = 4, seeds=(1, 2), **kw) -> Request:
    return Request(SchedulerSpec.of(name), steps, tuple(seeds), PROMPT, **kw)


def test_identical_requests_are_computed_once(dummy_engine: Engine) -> None:
    """A repeat is a lookup: the fastest of five repeats (so that a garbage collection or a busy machine during one
    cannot fail it) takes under a millisecond, where a generation takes tens."""
    a = dummy_engine.generate(req())
    elapsed = []
    for _ in range(5):
        start = time.perf_counter()
        b = dummy_engine.generate(req())
        elapsed.append(time.perf_counter() - start)
        assert b is a
    assert dummy_engine.stats == {"hits": 5, "misses": 1, "uncached": 0, "extended": 0}
    assert min(elapsed) < 1e-3, f"a cached repeat took {min(elapsed) * 1e3:.3f} ms at best"


@pytest.mark.parametrize("change", [
    dict(steps=5), dict(seeds=(1, 3)), dict(guidance=1.0), dict(eta=1.0), dict(latents_seed=7),
])
def test_every_input_is_part_of_the_key(dummy_engine: Engine, change: dict) -> None:
    base = dummy_engine.generate(req())
    other = dummy_engine.generate(req(**change))
    assert other is not base and dummy_engine.stats["misses"] == 2


def test_scheduler_overrides_are_part_of_the_key(dummy_engine: Engine) -> None:
    a = dummy_engine.generate(Request(SchedulerSpec.of("ddpm"), 4, (1,), PROMPT))
    b = dummy_engine.generate(Request(SchedulerSpec.of("ddpm", timestep_spacing="trailing"), 4, (1,), PROMPT))
    assert a is not b and b.scheduler_config["timestep_spacing"] == "trailing"
    assert a.scheduler_config["timestep_spacing"] == "leading"


def test_an_override_the_stock_config_already_gives_is_the_stock_run(dummy_engine: Engine) -> None:
    """DPM-Solver with final_sigmas_type="zero" (its default) makes the stock DPM-Solver's config, so it is one
    generation: the second asks for it by its own request and gets the first's images; a real override is not."""
    stock = dummy_engine.generate(Request(SchedulerSpec.of("dpm-solver"), 4, (1,), PROMPT))
    spelled = Request(SchedulerSpec.of("dpm-solver", final_sigmas_type="zero"), 4, (1,), PROMPT)
    same = dummy_engine.generate(spelled)
    assert same.request == spelled and same.images is stock.images
    assert dummy_engine.stats["misses"] == 1 and dummy_engine.stats["hits"] == 1
    other = dummy_engine.generate(Request(SchedulerSpec.of("dpm-solver", final_sigmas_type="sigma_min"), 4, (1,),
                                          PROMPT))
    assert other.images is not stock.images and dummy_engine.stats["misses"] == 2


def test_a_kept_timed_generation_serves_the_cached_request(dummy_engine: Engine) -> None:
    """The timing rounds keep their uncached images (Engine.keep): a later cached request of the same configuration
    and seed reads them instead of generating again, and equals what it would have generated."""
    timed = dummy_engine.generate(req(seeds=(1,)), cached=False)
    dummy_engine.keep(timed)
    assert dummy_engine.generate(req(seeds=(1,))) is timed
    assert dummy_engine.stats["misses"] == 0 and dummy_engine.stats["hits"] == 1
    assert np.array_equal(dummy_engine.generate(req(seeds=(1,)), cached=False).images, timed.images)


def test_a_kept_generation_never_starts_a_longer_roster(dummy_engine: Engine) -> None:
    """A kept single timed seed serves its own request only: a roster that begins with its seed and prompt runs
    whole (as the plan counts it), not as the kept seed plus the rest."""
    dummy_engine.keep(dummy_engine.generate(req(seeds=(1,)), cached=False))
    longer = dummy_engine.generate(req(seeds=(1, 2)))
    assert dummy_engine.stats["extended"] == 0 and dummy_engine.stats["misses"] == 1
    assert sum(longer.chunks) == 2 and len(longer.request.seeds) == 2


def test_another_spelling_gets_one_object(dummy_engine: Engine) -> None:
    """Asked twice by a spelling the stock config already gives, a hit is the same object both times (so scores
    keyed by a generation's identity are computed once)."""
    dummy_engine.generate(Request(SchedulerSpec.of("dpm-solver"), 4, (1,), PROMPT))
    spelled = Request(SchedulerSpec.of("dpm-solver", final_sigmas_type="zero"), 4, (1,), PROMPT)
    assert dummy_engine.generate(spelled) is dummy_engine.generate(spelled)


def test_a_longer_roster_reuses_the_cached_first_seeds(dummy_engine: Engine) -> None:
    """A request that extends a cached one by more seeds runs only the new seeds, and joins them as a chunked
    generation joins its chunks: the result is the one-batch generation."""
    short = dummy_engine.generate(req(seeds=(1, 2), capture=True))
    longer = dummy_engine.generate(req(seeds=(1, 2, 3), capture=True))
    whole = dummy_engine.generate(req(seeds=(1, 2, 3), capture=True), cached=False)
    assert dummy_engine.stats["extended"] == 1 and dummy_engine.stats["misses"] == 2  # (1, 2), then (3,)
    assert np.array_equal(longer.images[:2], short.images)
    np.testing.assert_allclose(longer.latents, whole.latents, atol=1e-5)
    assert longer.unet_batch_sizes == whole.unet_batch_sizes
    assert [t.shape for t in longer.intermediates] == [t.shape for t in whole.intermediates]
    assert dummy_engine.generate(req(seeds=(1, 2, 3), capture=True)) is longer


def test_a_shared_z_t_is_never_extended(dummy_engine: Engine) -> None:
    """With latents_seed one generator draws the whole batch's z_T, so a shorter batch is not a prefix."""
    dummy_engine.generate(req(seeds=(1, 2), latents_seed=7))
    dummy_engine.generate(req(seeds=(1, 2, 3), latents_seed=7))
    assert dummy_engine.stats["extended"] == 0 and dummy_engine.stats["misses"] == 2


def test_timing_runs_bypass_the_cache(dummy_engine: Engine) -> None:
    a = dummy_engine.generate(req())
    b = dummy_engine.generate(req(), cached=False)
    assert b is not a and dummy_engine.stats["uncached"] == 1
    assert np.array_equal(a.images, b.images)


def test_batched_seed_k_equals_seed_k_alone(dummy_engine: Engine) -> None:
    """A list of CPU generators makes image k of a batch reproducible on its own (diffusers #3158)."""
    batch = dummy_engine.generate(req(seeds=(5, 6, 7)))
    alone = dummy_engine.generate(req(seeds=(6,)))
    np.testing.assert_allclose(batch.latents[1], alone.latents[0], atol=1e-4)


def test_unet_calls_and_batch_sizes_are_counted(dummy_engine: Engine) -> None:
    g = dummy_engine.generate(req(seeds=(1, 2, 3), steps=3))
    assert g.unet_batch_sizes == [6, 6, 6]  # CFG: one call of 2B per step
    g1 = dummy_engine.generate(req(seeds=(1, 2, 3), steps=3, guidance=1.0))
    assert g1.unet_batch_sizes == [3, 3, 3]


def test_unet_counter_sees_positional_and_keyword_samples(dummy_pipe) -> None:
    x = torch.zeros(2, 4, 8, 8)
    emb = torch.zeros(2, 16, 16)
    with count_unet_calls(dummy_pipe.unet) as calls, torch.no_grad():
        dummy_pipe.unet(x, 1, encoder_hidden_states=emb)
        dummy_pipe.unet(sample=x[:1], timestep=1, encoder_hidden_states=emb[:1])
    assert calls.batch_sizes == [2, 1] and calls.samples == 3


def test_random_draws_are_counted(dummy_engine: Engine) -> None:
    with count_random_draws() as ddpm:
        dummy_engine.generate(req("ddpm", steps=5), cached=False)
    with count_random_draws() as ddim:
        g = dummy_engine.generate(req("ddim", steps=5), cached=False)
    assert ddim.count == len(g.chunks)  # z_T only, drawn once per pipeline call (a CPU lane is one)
    assert ddpm.count >= 5  # z_T plus per-step noise


def test_capture_keeps_every_step_and_x0_previews(dummy_engine: Engine) -> None:
    g = dummy_engine.generate(req(steps=4, capture=True))
    assert len(g.intermediates) == 4 and len(g.x0_previews) == 4
    assert torch.equal(g.intermediates[-1], g.latents)
    assert g.extra["callbacks"] == 4


def test_a_capture_is_decoded_once(dummy_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several claims read one roster's trajectory (final-sigma-zero's noise control, coarse-to-fine): the engine
    decodes each generation's steps and x0 previews once, as [steps, batch, H, W, 3], and shares the array
    read-only."""
    gen = dummy_engine.generate(req(capture=True))
    decodes = []
    real = dummy_engine.decode
    monkeypatch.setattr(dummy_engine, "decode", lambda lat: decodes.append(len(lat)) or real(lat))
    steps = dummy_engine.decode_captured(gen, "steps")
    assert dummy_engine.decode_captured(gen, "steps") is steps
    x0 = dummy_engine.decode_captured(gen, "x0")
    assert decodes == [len(gen.intermediates) * 2, len(gen.x0_previews) * 2]
    assert steps.shape[:2] == (len(gen.intermediates), 2) and x0.shape[:2] == (len(gen.x0_previews), 2)
    assert np.array_equal(steps[-1, 0], real(gen.intermediates[-1])[0])
    with pytest.raises(ValueError):
        steps[0, 0, 0, 0, 0] = 0


def test_decodes_past_the_memory_budget_are_not_kept(dummy_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """SD 1.5's decoded trajectories are ~50x their latents: past DECODED_CACHE_BYTES the engine decodes per use."""
    import sampler_claims.engine as engine_module

    monkeypatch.setattr(engine_module, "DECODED_CACHE_BYTES", 0)
    gen = dummy_engine.generate(req(capture=True))
    first = dummy_engine.decode_captured(gen, "steps")
    second = dummy_engine.decode_captured(gen, "steps")
    assert first is not second and np.array_equal(first, second)


def test_latent_output_skips_decoding(dummy_engine: Engine) -> None:
    g = dummy_engine.generate(req(output="latent"))
    assert g.images is None and g.latents.shape == (2, 4, 8, 8)


def test_explicit_generators_are_not_cached(dummy_engine: Engine) -> None:
    g = dummy_engine.generate(req("ddpm"), generators=cpu_generators((1, 2)))
    assert dummy_engine.stats["uncached"] == 1 and g.images.shape[0] == 2


def test_guard_names_the_configuration_of_a_blank_image(dummy_pipe, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(dummy_pipe, model_key="dummy", size=16, device="cpu")
    monkeypatch.setattr(dummy_pipe.vae, "decode", lambda z, return_dict=False, generator=None: (
        torch.full((z.shape[0], 3, 16, 16), -1.0),))
    with pytest.raises(GenerationError, match=r"DDIM @ 4 steps.*blank or constant"):
        engine.generate(req())


def test_guard_catches_nan_latents(dummy_pipe, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(dummy_pipe, model_key="dummy", size=16, device="cpu")
    from diffusers import DDIMScheduler

    original = DDIMScheduler.step

    def nan_step(self, *a, **k):
        out = original(self, *a, **k)
        out[0].fill_(float("nan"))
        return out

    monkeypatch.setattr(DDIMScheduler, "step", nan_step)
    with pytest.raises(GenerationError, match="NaN"):
        engine.generate(req())


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_factory_makes_every_scheduler_from_the_stock_config(dummy_pipe, name: str) -> None:
    if name == "dpm-sde":  # an optional dependency of diffusers; the atlas lists it as unable to run without it
        pytest.importorskip("torchsde", reason="DPMSolverSDEScheduler needs torchsde (pip install torchsde)")
    scheduler, used = make_scheduler(SchedulerSpec.of(name), dummy_pipe.scheduler.config)
    assert type(scheduler).__name__ == used["_class_name"]
    assert used["steps_offset"] == 1 and used["beta_schedule"] == "scaled_linear"


def test_unknown_scheduler_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: ddpm, ddim"):
        SchedulerSpec.of("euler-b")


def test_stock_ddpm_at_1000_steps_hits_issue_10003(dummy_engine: Engine) -> None:
    """SD 1.5's stock config makes t=1000 at 1000 'leading' steps: the IndexError the lesson meets."""
    with pytest.raises(IndexError):
        dummy_engine.generate(Request(SchedulerSpec.of("ddpm"), 1000, (1,), PROMPT, output="latent"))
