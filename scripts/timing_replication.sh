#!/usr/bin/env bash
# The timing claims' replication in one command: N runs of speedup, linear-time, cfg-two-passes and
# recommended-default, each with a fresh --claims-report folder; prints every run's verdicts and intervals.
#   scripts/timing_replication.sh [N] [--busy K] [-- extra pytest args]   (default N=3)
# Quiet check: run it on a fresh clone with nothing else running. Busy check: --busy 2.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f .venv/bin/activate ]; then . .venv/bin/activate; fi
export HF_HUB_OFFLINE=1
n=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then n=$1; shift; fi
exec python scripts/timing_replication.py -n "$n" "$@"
