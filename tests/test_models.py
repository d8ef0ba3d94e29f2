"""Loading: local folders with from_pretrained, clear errors for broken ones, seeded dummy builds."""
from __future__ import annotations

import json
import shutil

import pytest

from sampler_claims import options
from sampler_claims.rules.exercise1 import state_hash
from sampler_claims.models import ModelLoadError, get_dummy_components, load


def test_dummy_components_are_seeded() -> None:
    a, b = get_dummy_components(0), get_dummy_components(0)
    assert state_hash(a["unet"]) == state_hash(b["unet"])
    assert state_hash(a["unet"]) != state_hash(get_dummy_components(1)["unet"])


def test_local_folder_loads_with_from_pretrained(dummy_folder) -> None:
    loaded = load(options.resolve(model=str(dummy_folder), device="cpu"))
    assert loaded.pipe.safety_checker is None and loaded.size == 16
    assert loaded.info["model"] == "folder"


def test_folder_without_weights_names_the_fix(dummy_folder, tmp_path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(dummy_folder, broken)
    for weights in (broken / "unet").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(ModelLoadError, match="(?s)could not load folder model.*save_pretrained"):
        load(options.resolve(model=str(broken), device="cpu"))


def test_progress_bar_is_off(dummy_folder) -> None:
    pipe = load(options.resolve(model=str(dummy_folder), device="cpu")).pipe
    assert pipe._progress_bar_config.get("disable") is True


def test_model_index_lists_no_safety_checker(dummy_folder) -> None:
    index = json.loads((dummy_folder / "model_index.json").read_text())
    assert index["safety_checker"] == [None, None]
