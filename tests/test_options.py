"""Option parsing and model resolution, including every bad input the suite must refuse clearly."""
from __future__ import annotations

import argparse

import pytest

from sampler_claims import options, paths
from sampler_claims.options import SettingsError, resolve
from sampler_claims.timing import timing_plan


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_auto_without_cuda_resolves_to_the_embedded_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options, "cuda_available", lambda: False)
    s = resolve()
    assert (s.model_kind, s.device, s.dtype_name) == ("tiny", "cpu", "float32")
    assert "no CUDA" in s.model_reason


def test_auto_with_cuda_but_no_weights_falls_back_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(options, "cuda_available", lambda: True)
    monkeypatch.setattr(options, "cuda_device_count", lambda: 1)
    s = resolve(device="cuda")
    assert s.model_kind == "tiny" and s.dtype_name == "float16"
    assert "neither cached nor reachable" in s.model_reason


def test_auto_with_cuda_and_cached_weights_picks_sd15(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(options, "cuda_available", lambda: True)
    monkeypatch.setattr(options, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(options, "sd15_in_cache", lambda hub_id=paths.SD15_HUB_ID: str(tmp_path))
    s = resolve(device="cuda")
    assert (s.model_kind, s.model_source) == ("sd15", str(tmp_path))


def test_sd15_offline_without_cache_names_the_fix() -> None:
    with pytest.raises(SettingsError, match="--model PATH"):
        resolve(model="sd15")


def test_unknown_model_lists_the_choices() -> None:
    with pytest.raises(SettingsError, match="Choices: auto, tiny, sd15, sd15-random"):
        resolve(model="nonsense")


def test_empty_folder_is_not_a_pipeline(tmp_path) -> None:
    with pytest.raises(SettingsError, match="not a diffusers pipeline folder: model_index.json missing"):
        resolve(model=str(tmp_path))


def test_folder_with_model_index_is_accepted(dummy_folder) -> None:
    s = resolve(model=str(dummy_folder))
    assert s.model_kind == "folder" and s.trained


def test_sd15_random_is_marked_untrained() -> None:
    s = resolve(model="sd15-random")
    assert s.model_kind == "sd15-random" and not s.trained


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_refused(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    monkeypatch.setattr(options, "cuda_available", lambda: False)
    with pytest.raises(SettingsError, match="no CUDA device.*--device cpu"):
        resolve(device=device)


def test_bad_device_string() -> None:
    with pytest.raises(SettingsError, match="not one of auto, cpu, cuda"):
        resolve(device="gpu")


def test_float16_on_cpu_is_refused() -> None:
    with pytest.raises(SettingsError, match="float16 is refused on the CPU.*--dtype float32"):
        resolve(device="cpu", dtype="float16")


def test_bfloat16_on_cpu_is_allowed() -> None:
    assert resolve(device="cpu", dtype="bfloat16").dtype_name == "bfloat16"


@pytest.mark.parametrize("text", ["0", "-3", "many"])
def test_seeds_must_be_positive(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="whole number|at least 1"):
        options.positive_int(text)


def test_offload_needs_cuda() -> None:
    with pytest.raises(SettingsError, match="--offload"):
        resolve(device="cpu", offload=True)


def test_relative_report_path_is_under_rootdir(tmp_path) -> None:
    s = resolve(report="out/x.html", rootdir=tmp_path)
    assert s.report_path == tmp_path / "out/x.html"


# ------------------------------------------------------------- the same, as a user meets it on the command line
@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "nonsense"], "Choices: auto, tiny, sd15, sd15-random"),
        (["--model", "{empty}"], "not a diffusers pipeline folder: model_index.json missing"),
        (["--device", "cuda"], "no CUDA device"),
        (["--seeds", "0"], "argument --seeds: must be at least 1"),
        (["--timing-rounds", "1"], "--timing-rounds must be at least 2"),
        (["--seed-base", "-5"], "--seed-base must be between 0"),
        (["--claims-report", "/proc/nope/x.html"], "--claims-report /proc/nope/x.html: cannot write to the folder"),
        (["--size", "1000000"], "--size 1000000: one image needs at least"),
        (["--claim", "speed-up"], "--claim 'speed-up' is not a claim id"),
        (["--dtype", "float16", "--device", "cpu"], "float16 is refused on the CPU"),
        (["--clip-model", "/nonexistent"], "--clip-model /nonexistent: no such folder"),
        (["--size", "7"], "--size 7: give a multiple of 8 pixels; the tiny model is trained at 32 px: --size 32"),
        (["--claim", "ddim-determinstic"], "Did you mean ddim-deterministic?"),
    ],
)
def test_bad_input_is_one_usage_error(pytester: pytest.Pytester, tmp_path, args: list[str], message: str) -> None:
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    pytester.makepyfile("def test_never(): pass")
    args = [a.replace("{empty}", str(empty)) for a in args]
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "Traceback" not in result.stderr.str()


def test_header_says_which_model_and_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--device", "cpu")
    result.stdout.fnmatch_lines(["claims: model=tiny (auto: no CUDA device*", "claims: device=cpu dtype=float32*"])
    assert result.ret == 0


def test_help_shows_the_claims_group_with_defaults(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "sampler_claims.plugin", "--help")
    out = result.stdout.str()
    for opt in ("--model=NAME|PATH|HUB_ID", "--device=DEVICE", "--dtype=DTYPE", "--seeds=N", "--claims-report=PATH",
                "--seed-base=N", "--timing-rounds=N"):
        assert opt in out
    flat = " ".join(out.split())  # argparse wraps help lines
    rounds = timing_plan()["rounds"]  # the registry's, not a copy
    assert "(default: 32)" in flat and "(default: reports/index.html)" in flat and f"(default: {rounds})" in flat
