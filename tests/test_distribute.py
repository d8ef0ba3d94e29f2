"""Spreading the suite with pytest-xdist: one GPU per worker, claim selection by id, and a distributed run
whose report matches a serial one claim for claim."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sampler_claims import options, registry

ROOT = Path(__file__).resolve().parents[1]


def test_workers_map_to_gpus_round_robin():
    assert [options.worker_device(f"gw{k}", 4) for k in range(6)] == [
        "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert options.worker_device(None, 4) is None and options.worker_device("gw1", 0) is None


def test_resolve_device_gives_each_worker_its_gpu_unless_pinned(monkeypatch):
    monkeypatch.setattr(options, "cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert [options.resolve_device("auto", f"gw{k}") for k in range(4)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert options.resolve_device("cuda", "gw5") == "cuda:1"
    assert options.resolve_device("cuda:3", "gw0") == "cuda:3"  # --device cuda:N pins every worker
    assert options.resolve_device("auto", None) == "cuda"  # no xdist: the default card
    assert options.resolve_device("cpu", "gw2") == "cpu"


def _collect(*args: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pytest", "claims/", "--collect-only", "-q", *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return [line for line in out.stdout.splitlines() if "::" in line]


def test_claim_selects_exactly_the_named_claims():
    got = _collect("--claim", "speedup", "--claim", "linear-time")
    assert got == ["claims/test_exercise1.py::test_speedup", "claims/test_exercise3.py::test_linear_time"], got


def test_every_claim_has_exactly_one_deciding_test():
    got = _collect()
    assert len(got) == len(registry.CLAIMS), got


def test_an_unknown_claim_id_is_a_usage_error():
    out = subprocess.run([sys.executable, "-m", "pytest", "claims/", "--collect-only", "--claim", "speed-up"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == pytest.ExitCode.USAGE_ERROR and "not a claim id" in out.stderr


def test_the_readme_and_gpu_check_selections_name_real_claims():
    text = (ROOT / "README.md").read_text() + (ROOT / "scripts" / "gpu-check.sh").read_text()
    named = set(re.findall(r"--claim ([a-z0-9][\w-]+)", text))
    assert named and named <= set(registry.CLAIMS), named - set(registry.CLAIMS)


#: Fast exact claims from three exercises: enough to put work on both workers.
SMALL = ["same-weights", "ddim-deterministic", "ddpm-stochastic", "ddim-eta", "callback-after-step",
         "dpm-multi-point", "ddpm-formula-adjacent"]


def _run(tmp: Path, folder: Path, *extra: str) -> dict:
    report = tmp / "index.html"
    sel = [a for cid in SMALL for a in ("--claim", cid)]
    out = subprocess.run([sys.executable, "-m", "pytest", "claims/", "-q", "-p", "no:randomly", "--model",
                          str(folder), "--claims-report", str(report), *sel, *extra],
                         cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert report.is_file(), out.stdout[-3000:] + out.stderr[-3000:]
    return json.loads((tmp / "claims.json").read_text())


def test_a_distributed_run_reports_what_a_serial_run_reports(tmp_path, dummy_folder):
    pytest.importorskip("xdist")
    serial = _run(tmp_path / "serial", dummy_folder)
    dist = _run(tmp_path / "dist", dummy_folder, "-n", "2")

    def summary(data):
        return {c["id"]: (c["verdict"], len(c["evidence"]), c["outcome"]) for c in data["claims"] if c["id"] in SMALL}

    assert summary(dist) == summary(serial)
    assert {c["ran_on"].get("worker") for c in dist["claims"] if c["id"] in SMALL} == {"gw0", "gw1"}
    by_group: dict[str, set[str]] = {}
    for c in dist["claims"]:
        if c["id"] in SMALL:
            by_group.setdefault(registry.get(c["id"]).group, set()).add(c["ran_on"]["worker"])
    assert all(len(w) == 1 for w in by_group.values()), by_group  # a group never spans workers
    assert {c["ran_on"].get("worker") for c in serial["claims"] if c["id"] in SMALL} == {"main"}
    images = [e for c in dist["claims"] for e in c["evidence"] if e["kind"] == "images"]
    assert images and all(e["files"] for e in images)  # the images came over from the workers
