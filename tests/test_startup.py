"""Start-up: usage errors, --claims-list and --help answer before torch is imported, and every option is checked
before a model loads."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sampler_claims import options, paths, registry
from sampler_claims.listing import claims_listing
from sampler_claims.options import SettingsError

ROOT = Path(__file__).resolve().parents[1]

#: Runs pytest in-process in a fresh interpreter and reports whether torch got imported.
PROBE = ("import sys, pytest; rc = pytest.main(sys.argv[1:]); "
         "print('TORCH-IMPORTED' if 'torch' in sys.modules else 'TORCH-NOT-IMPORTED'); sys.exit(rc)")


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PROBE, "-p", "no:randomly", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def test_claims_list_prints_every_claim_without_torch() -> None:
    out = _pytest("--claims-list")
    assert out.returncode == 0, out.stderr
    assert "TORCH-NOT-IMPORTED" in out.stdout
    for claim in registry.CLAIMS.values():
        assert f"  {claim.id} " in out.stdout
    assert registry.get("ddim-deterministic").lesson in out.stdout


def test_an_unknown_claim_is_refused_before_torch_with_the_closest_id() -> None:
    out = _pytest("claims/", "--claim", "ddim-determinstic")
    assert out.returncode == pytest.ExitCode.USAGE_ERROR
    assert "Did you mean ddim-deterministic?" in out.stderr, out.stderr
    assert "TORCH-NOT-IMPORTED" in out.stdout
    assert "requires torchvision" not in out.stderr


def test_help_does_not_import_torch() -> None:
    out = _pytest("--help")
    assert out.returncode == 0 and "--claims-list" in out.stdout
    assert "TORCH-NOT-IMPORTED" in out.stdout


def test_a_missing_clip_folder_is_a_usage_error_at_start_up() -> None:
    out = _pytest("claims/", "--clip-model", "/nonexistent/clip")
    assert out.returncode == pytest.ExitCode.USAGE_ERROR
    assert "--clip-model /nonexistent/clip: no such folder" in out.stderr
    assert "TORCH-NOT-IMPORTED" in out.stdout


@pytest.mark.parametrize("arg", ["auto", "tiny", "openai/clip-vit-base-patch16", "clip-vit"])
def test_hub_ids_and_keywords_are_not_taken_for_missing_folders(arg: str) -> None:
    options.check_clip_model(arg)


@pytest.mark.parametrize("arg", ["./clip", "~/no-such-clip-here", "a/b/c", "../clip"])
def test_paths_that_do_not_exist_are_refused(arg: str) -> None:
    with pytest.raises(SettingsError, match="no such folder"):
        options.check_clip_model(arg)


def test_a_clip_path_to_a_file_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "clip.bin"
    f.write_text("")
    with pytest.raises(SettingsError, match="not a folder"):
        options.check_clip_model(str(f))


def test_claim_typos_get_the_closest_ids_and_strangers_get_the_list() -> None:
    with pytest.raises(SettingsError, match="Did you mean speedup"):
        options.check_claim_ids(["speed-up"], registry.CLAIMS)
    with pytest.raises(SettingsError) as exc:
        options.check_claim_ids(["zzzz"], registry.CLAIMS)
    assert "Did you mean" not in str(exc.value) and "--claims-list" in str(exc.value)


def test_a_bad_size_suggests_the_models_own_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SettingsError) as exc:
        options.resolve(model="tiny", device="cpu", size=7)
    assert "--size 32" in str(exc.value) and "512" not in str(exc.value)
    with pytest.raises(SettingsError, match="--size 512"):
        options.resolve(model="sd15-random", device="cpu", size=7)


def test_native_size_is_read_from_the_folder_without_loading() -> None:
    assert options.native_size("tiny", str(paths.TINY_MODEL)) == 32
    assert options.native_size("sd15-random", str(paths.SD15_RANDOM)) == 512
    assert options.native_size("hub", "/nowhere") is None


def test_the_listing_groups_by_exercise_and_wraps() -> None:
    text = claims_listing(registry.CLAIMS.values(), width=80)
    assert text.startswith(f"{len(registry.CLAIMS)} claims")
    exercises = list(dict.fromkeys(c.exercise for c in registry.CLAIMS.values()))
    assert [line for line in text.splitlines() if line in exercises] == exercises
    assert all(len(line) <= 80 for line in text.splitlines()[2:] if line.startswith("      "))


def test_a_bare_pytest_runs_the_harness_tests_and_ci_runs_both() -> None:
    assert '\ntestpaths = ["tests"]\n' in (ROOT / "pyproject.toml").read_text()
    assert "python -m pytest tests claims\n" in (ROOT / ".ci" / "run").read_text()


def test_report_files_follow_the_umask(tmp_path: Path) -> None:
    """Written atomically (temp file, then rename) yet readable by the group and others under umask 022."""
    import os
    import stat

    from sampler_claims.results import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "r" / "index.html", "<html></html>")
        os.umask(0o077)
        atomic_write(tmp_path / "r" / "private.json", "{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r" / "index.html").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "r" / "private.json").stat().st_mode) == 0o600
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["index.html", "private.json"]  # no temp left
