"""Fixtures for the harness's own tests: a fast random-weight pipeline and an engine over it."""
from __future__ import annotations

import pytest
import torch

from sampler_claims.engine import Engine
from sampler_claims.models import dummy_pipeline


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """A test may pin torch to one thread for repeatable numbers; restore the count after it, so that the claims
    run after tests/ in the same session (the README's test command) keep the threads the plugin chose."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)

@pytest.fixture(scope="session")
def dummy_pipe():
    return dummy_pipeline()


@pytest.fixture
def engine(dummy_pipe) -> Engine:
    """The negative controls' engine: guard off, because a broken sampler may make flat images and the rule, not
    the guard, must catch it. Over the random pipeline, so it overrides the plugin's engine for tests/."""
    return Engine(dummy_pipe, model_key="dummy", size=16, device="cpu", check=False)


@pytest.fixture
def dummy_engine(dummy_pipe) -> Engine:
    """A fresh engine (empty cache) over the shared random pipeline; the guard is on."""
    return Engine(dummy_pipe, model_key="dummy", size=16, device="cpu")


@pytest.fixture(scope="session")
def dummy_folder(tmp_path_factory: pytest.TempPathFactory, dummy_pipe):
    """The random pipeline saved as a diffusers folder, for --model PATH."""
    folder = tmp_path_factory.mktemp("dummy-pipe")
    dummy_pipe.save_pretrained(folder)
    return folder
