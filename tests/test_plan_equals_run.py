"""The plan equals the run: every claim's tests run against a recording engine (the real pipelines and schedulers,
the U-Net replaced by a cheap deterministic function: tests/plugins/stub_unet.py), and for every claim the
generations it asked the engine for equal the plan's list, configuration by configuration and image by image,
shared generations counted once, in the claim that made them."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_every_claim_makes_exactly_the_generations_the_plan_lists(tmp_path: Path) -> None:
    out = tmp_path / "index.html"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "plugins"), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-m", "pytest", "claims/", "-p", "stub_unet", "-q", "-p", "no:randomly",
                        "--seeds", "4", "--timing-rounds", "2", "--claims-report", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert (tmp_path / "claims.json").is_file(), r.stdout[-3000:] + r.stderr[-3000:]
    data = json.loads((tmp_path / "claims.json").read_text())
    wrong = []
    for c in data["claims"]:
        if c["verdict"] == "skipped" and "did not run" in c["reason"]:
            continue
        e = c["ran_on"].get("unet_evaluations", {})
        made = collections.Counter(map(tuple, e.get("generations", [])))
        planned = collections.Counter(map(tuple, e.get("planned_generations", [])))
        if made != planned or e.get("made") != e.get("planned"):
            wrong.append(f"{c['id']}: made {e.get('made')} planned {e.get('planned')}; made but not planned "
                         f"{dict(made - planned)}; planned but not made {dict(planned - made)}")
    assert not wrong, "\n".join(wrong)
