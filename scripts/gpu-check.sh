#!/usr/bin/env bash
# The device check: the suite on CUDA, within about 8 minutes on one H100 with no network.
#   bash scripts/gpu-check.sh OUT_DIR
# 1. installs the wheels carried in .whl/ (diffusers and what the GPU image lacks), if any;
# 2. runs the whole suite on the embedded model on CUDA;
# 3. runs the timing and counting claims on sd15-random (SD 1.5's architecture, random weights), fp16, 512x512;
# 4. measures the engine against a bare pipe() call per step at 512x512 with and without CFG;
# 5. runs one chunked 32-seed sd15-random generation at 512x512 in fp16 (the engine's measured chunk, VAE slicing)
#    and prints peak memory, the chunk chosen and the time per U-Net evaluation as JSON (chunked_check.json);
# 6. prints the cost plan of a default sd15-random run on this GPU (--claims-plan: calibrated, nothing generated);
# 7. times eager against torch.compile (--compile) on sd15-random at 512x512 fp16: 8 seeds and one seed, DDPM@20,
#    interleaved repeats, the compilation per shape and the largest difference of the latents (compile_check.json);
# and writes both reports, claims.json and the benchmark JSON under OUT_DIR.
# CHUNKED_ONLY=1 runs steps 1, 5 and 6 only (about 4 minutes): the memory and cost figures the README still lacks.
# COMPILE_ONLY=1 runs steps 1 and 7 only (about 4 minutes, most of it compiling SD 1.5's U-Net twice).
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 1; }
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
python3 - <<'PY' || exit 1
import torch, diffusers
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print("diffusers", diffusers.__version__)
PY
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
rc=0
if [ -z "${COMPILE_ONLY:-}" ]; then
if [ -z "${CHUNKED_ONLY:-}" ]; then
t0=$(date +%s)
timeout 150 python3 -m pytest claims/ -p no:cacheprovider --model tiny --device cuda \
  --claims-report "$out/tiny/index.html" -q -rfEx 2>&1 | tee "$out/tiny.log" | tail -25 || rc=1
t1=$(date +%s); echo "embedded suite on CUDA: $((t1 - t0)) s"
timeout 300 python3 -m pytest claims/ -p no:cacheprovider --model sd15-random --device cuda --dtype float16 \
  --claim speedup --claim linear-time --claim cfg-two-passes --claim dpm-multi-point --claim callback-after-step \
  --claim same-weights --claim ddpm-noise-draws --claim steps-are-calls --claim ddim-step-lands-on-schedule \
  --claims-report "$out/sd15-random/index.html" -q -rfEx 2>&1 | tee "$out/sd15-random.log" | tail -25 || rc=1
t2=$(date +%s); echo "sd15-random timing and counting claims: $((t2 - t1)) s"
timeout 120 python3 scripts/engine_overhead.py --model sd15-random --device cuda --dtype float16 --steps 20 --rounds 3 \
  | tee "$out/engine_overhead.json" || rc=1
fi
timeout 240 python3 scripts/chunked_check.py --device cuda --dtype float16 --seeds 32 --steps 20 --size 512 \
  | tee "$out/chunked_check.json" || rc=1
timeout 120 python3 -m pytest claims/ -p no:cacheprovider --model sd15-random --device cuda --dtype float16 \
  --claims-plan --claims-report "$out/plan/index.html" 2>&1 | grep "claims plan" | tee "$out/plan.txt" || rc=1
fi
if [ -z "${CHUNKED_ONLY:-}" ]; then
t0=$(date +%s)
timeout 420 python3 scripts/compile_check.py --model sd15-random --device cuda --dtype float16 --size 512 \
  --seeds 8 --steps 20 --repeats 3 --variants eager,compile --shapes roster,one \
  > "$out/compile_check.json" 2> "$out/compile_check.log" || { rc=1; tail -20 "$out/compile_check.log"; }
cat "$out/compile_check.json"
echo "eager against compiled at 512x512 fp16: $(( $(date +%s) - t0 )) s"
fi
python3 - "$out" <<'PY'
import json, sys, pathlib
for name in ("tiny", "sd15-random"):
    p = pathlib.Path(sys.argv[1]) / name / "claims.json"
    if not p.exists():
        print(name, "no claims.json"); continue
    d = json.loads(p.read_text())
    print(f"== {name}: {d['environment'].get('gpu')} {d['environment'].get('dtype')} {d['environment'].get('duration_s')} s")
    for c in d["claims"]:
        if c["outcome"] != "not run":
            print(f"  {c['id']:32s} {c['verdict']:12s} {c['metrics'].get('key', '')}")
PY
exit $rc
