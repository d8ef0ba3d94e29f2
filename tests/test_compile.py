"""--compile and --channels-last: checked at start-up, recorded in the report, and explicit engine settings.
(The compiled U-Net itself runs in tests/test_sd15_random.py, on SD 1.5's architecture: slow.)"""
from __future__ import annotations

import shutil

import pytest
import torch

from sampler_claims import options
from sampler_claims.compare import compare
from sampler_claims.engine import Engine
from sampler_claims.models import dummy_pipeline
from sampler_claims.options import SettingsError


def test_compile_is_off_by_default_and_on_when_asked() -> None:
    assert not options.resolve(device="cpu").compile
    s = options.resolve(device="cpu", compile=True, channels_last=True)
    assert s.compile and s.channels_last


def test_compile_with_offload_is_refused_with_the_fix() -> None:
    with pytest.raises(SettingsError, match="drop one of them"):
        options.check_compile("cuda", offload=True)


def test_compile_on_mps_is_refused_with_the_fix() -> None:
    with pytest.raises(SettingsError, match="drop --compile or pass --device cpu"):
        options.check_compile("mps", offload=False)


def test_compile_on_the_cpu_needs_a_cpp_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SettingsError, match="needs a C\\+\\+ compiler"):
        options.resolve(device="cpu", compile=True)


def test_the_engine_settings_are_explicit_and_off_by_default() -> None:
    """channels_last changes the U-Net's weights' layout (images may change in the last bits): only when asked."""
    pipe = dummy_pipeline()
    eng = Engine(pipe, model_key="d", size=16, device="cpu")
    assert not eng.channels_last and not eng.compiled
    assert not hasattr(pipe.unet, "_sampler_claims_compiled")
    weight = pipe.unet.conv_in.weight
    assert weight.is_contiguous()
    eng = Engine(dummy_pipeline(), model_key="d", size=16, device="cpu", channels_last=True)
    assert eng.pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)


def test_compile_replaces_the_forward_not_the_module() -> None:
    """The counters are forward pre-hooks on the module: the module stays, its forward is compiled."""
    pipe = dummy_pipeline()
    unet = pipe.unet
    Engine(pipe, model_key="d", size=16, device="cpu", compile=True)
    assert pipe.unet is unet and unet._sampler_claims_compiled and "forward" in vars(unet)


def test_a_report_from_before_compile_existed_compares_as_compile_off() -> None:
    """claims.json records compile and channels_last; an older one without them reads as off, not as a change."""
    old = {"environment": {"device": "cpu"}, "claims": []}
    new = {"environment": {"device": "cpu", "compile": False, "channels_last": False}, "claims": []}
    assert compare(old, new).environment == []
    on = {"environment": {"device": "cpu", "compile": True, "channels_last": False}, "claims": []}
    assert compare(old, on).environment == [{"key": "compile", "old": False, "new": True}]
