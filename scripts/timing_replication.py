"""Run the four timing claims N times, each in a fresh --claims-report folder, and print per run and claim the
verdict and the intervals it was decided on (the time half of recommended-default separately: its quality half
is not a timing question).

Usage: python scripts/timing_replication.py [-n 3] [--out DIR] [--busy K] [-- extra pytest args]
  --busy K starts K busy loops (`python -c "while 1: pass"`) beside the runs and stops them after.
Prints one block per run and a last line per claim: the verdicts over the runs. Exit status 0; the table is the
result. A run's HTML report, claims.json and benchmarks.json stay under DIR/run-K/.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sampler_claims import registry  # noqa: E402
from sampler_claims.verdict import at_most, t_interval  # noqa: E402

CLAIMS = ("speedup", "linear-time", "cfg-two-passes", "recommended-default")


def summarise(claims_json: Path, bench_json: Path) -> dict[str, tuple[str, str]]:
    """Per claim: (verdict, the intervals it reads), from one run's claims.json and benchmarks.json."""
    data = {c["id"]: c for c in json.loads(claims_json.read_text())["claims"]}
    out: dict[str, tuple[str, str]] = {}
    s = data["speedup"]
    ratios = s["metrics"].get("speedup", {}).get("ratios", {})
    out["speedup"] = (s["verdict"], "; ".join(f"{n} {r['mean']:.1f}x [{r['ci95'][0]:.1f}, {r['ci95'][1]:.1f}]"
                                              for n, r in ratios.items()))
    lt = data["linear-time"]
    fits = lt["metrics"].get("fits", {})
    if fits:
        share, r2 = t_interval(fits["overhead_share"]), t_interval(fits["r2"])
        text = (f"overhead share {share.mean:+.3f} [{share.low:+.3f}, {share.high:+.3f}], "
                f"R2 {r2.mean:.4f} [{r2.low:.4f}, {r2.high:.4f}]")
    else:
        text = "no fits"
    out["linear-time"] = (lt["verdict"], text)
    cfg = data["cfg-two-passes"]
    c = cfg["metrics"].get("cfg", {})
    out["cfg-two-passes"] = (cfg["verdict"], f"{c.get('cfg_calls')} calls for {c.get('steps')} steps, "
                                             f"time ratio {c.get('time_ratio') or float('nan'):.2f}")
    rd = data["recommended-default"]
    shares = rd["metrics"].get("time_shares", {})
    bound = registry.get("recommended-default").t("max_time_share")
    parts = []
    verdicts = set()
    for steps, v in shares.items():
        iv = t_interval(v)
        verdicts.add(at_most(iv, bound, "").verdict)
        parts.append(f"{steps} steps {iv.mean:.2%} [{iv.low:.2%}, {iv.high:.2%}]")
    half = ("confirmed" if verdicts == {"confirmed"} else "refuted" if "refuted" in verdicts else
            "inconclusive") if verdicts else rd["verdict"]
    out["recommended-default (time half)"] = (half, "; ".join(parts) + f" of DDPM@1000 (claim: {rd['verdict']})")
    try:
        b = next(x for x in json.loads(bench_json.read_text())["benchmarks"]
                 if x.get("group") == "interleaved timing rounds")
        info = b["extra_info"]
        out["rounds"] = (f"{b['stats']['rounds']} rounds",
                         f"timing took {info.get('elapsed_s', float('nan')):.1f} s; repetitions "
                         + ", ".join(f"{k} x{v}" for k, v in info.get("repetitions", {}).items()))
    except (StopIteration, FileNotFoundError, KeyError):
        pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=3, help="runs (default 3)")
    ap.add_argument("--out", default=None, help="folder for the runs' reports (default: a fresh one under /tmp)")
    ap.add_argument("--busy", type=int, default=0, help="busy loops to start beside the runs (default 0)")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = ap.parse_args()
    out = Path(args.out or f"/tmp/timing-replication-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    busy = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(args.busy)]
    table: dict[str, list[str]] = {}
    try:
        for k in range(1, args.n + 1):
            folder = out / f"run-{k}"
            cmd = [sys.executable, "-m", "pytest", "claims/", "-q", "-p", "no:cacheprovider",
                   *[f"--claim={c}" for c in CLAIMS], f"--claims-report={folder / 'index.html'}", *args.pytest_args]
            started = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            print(f"== run {k}/{args.n} ({time.perf_counter() - started:.0f} s, pytest exit {proc.returncode}"
                  f"{', beside %d busy loops' % args.busy if args.busy else ''}): {folder}")
            claims_json = folder / "claims.json"
            if not claims_json.exists():
                print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
                continue
            for name, (verdict, text) in summarise(claims_json, folder / "benchmarks.json").items():
                print(f"  {name:32s} {verdict:13s} {text}")
                table.setdefault(name, []).append(verdict)
            sys.stdout.flush()
    finally:
        for p in busy:
            p.terminate()
            p.wait()
    print("== verdicts over the runs")
    for name, verdicts in table.items():
        if name != "rounds":
            print(f"  {name:32s} {', '.join(verdicts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
