"""Fixtures for the harness's own tests: a fast random-weight pipeline and an engine over it.

torch and the engine are imported inside the fixtures: pytest loads this file for `pytest --help` and for every
usage error too (it lies under testpaths), and those must not wait seconds for torch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sampler_claims.engine import Engine


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """A test may pin torch to one thread for repeatable numbers; restore the count after it, so that the claims
    run after tests/ in the same session (CI's one pytest command) keep the threads the plugin chose."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def dummy_pipe():
    from sampler_claims.models import dummy_pipeline

    return dummy_pipeline()


@pytest.fixture
def engine(dummy_pipe) -> Engine:
    """The negative controls' engine: guard off, because a broken sampler may make flat images and the rule, not
    the guard, must catch it. Over the random pipeline, so it overrides the plugin's engine for tests/."""
    from sampler_claims.engine import Engine

    return Engine(dummy_pipe, model_key="dummy", size=16, device="cpu", check=False)


@pytest.fixture
def dummy_engine(dummy_pipe) -> Engine:
    """A fresh engine (empty cache) over the shared random pipeline; the guard is on."""
    from sampler_claims.engine import Engine

    return Engine(dummy_pipe, model_key="dummy", size=16, device="cpu")


@pytest.fixture(scope="session")
def dummy_folder(tmp_path_factory: pytest.TempPathFactory, dummy_pipe):
    """The random pipeline saved as a diffusers folder, for --model PATH."""
    folder = tmp_path_factory.mktemp("dummy-pipe")
    dummy_pipe.save_pretrained(folder)
    return folder
