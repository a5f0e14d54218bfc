#!/usr/bin/env bash
# medu1 on one NVIDIA GPU, in one prepared run (issue 20): for a GPU machine without network
# that receives this tree and .gpu/ from bench/gpu_prepare.sh. Under 8 minutes on an H200.
#
#   1. nvidia-smi, and the CUDA libraries the binary loads (torch's cu13 wheels or the toolkit);
#   2. the CUDA tests (crates/medu1-rl/tests/cuda.rs): GPU against CPU;
#   3. random-weight models in the shapes of Qwen2.5-0.5B / 1.5B / 3B (`medu1 export --random`);
#   4. generation throughput, 1 and 8 streams x 128 tokens, each shape (`medu1 generate`);
#   5. one GRPO step (1 prompt x 8 x 128 tokens, full fine-tuning, KL k3) on the 0.5B shape:
#      step time and peak GPU memory, medu1 against PyTorch + TRL (same GPU, f32 both, no
#      gradient checkpointing on either);
#   6. a summary table.
#
# Usage (device tool): command `bash bench/gpu.sh`, carry [".gpu"]. Writes its log and summary
# to $OUT (the device tool's folder) or to the first argument.
# Env: STEPS (GRPO steps per side, default 3; the first is excluded from the median),
#      SHAPES (default "0.5b 1.5b 3b"), SKIP_TRL=1.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-/tmp/medu1-gpu-out}}"
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu-log.txt"
SUMMARY="$OUT_DIR/summary.md"
exec > >(tee -a "$LOG") 2>&1
STEPS="${STEPS:-3}"
SHAPES="${SHAPES:-0.5b 1.5b 3b}"
W=$(mktemp -d)
t0=$(date +%s)
stamp() { echo "== [$(($(date +%s) - t0)) s] $*"; }
: >"$SUMMARY"
sum() { echo "$*" | tee -a "$SUMMARY"; }

stamp "nvidia-smi"
nvidia-smi || { echo "gpu.sh: nvidia-smi failed: no GPU here"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /' | tee -a "$SUMMARY"

# The binaries, unpacked.
for f in medu1 cuda-tests; do
    [ -f ".gpu/$f.xz" ] || { echo "gpu.sh: .gpu/$f.xz missing: run bench/gpu_prepare.sh"; exit 1; }
    xz -dc ".gpu/$f.xz" >"$W/$f" && chmod +x "$W/$f"
done
BIN="$W/medu1"

# cuBLAS, cuRAND, NVRTC and the CUDA runtime of CUDA 13 (torch's nvidia wheels, else the
# toolkit's folder), and the driver's libcuda.so.1 (the image mounts the driver under
# /usr/local/nvidia, which may not be on the loader's path).
roots="$(python3 -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null) /usr/local /usr/lib /usr/lib64 /opt"
dirs=""
libs="libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libcudart.so.13"
ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 ' || libs="$libs libcuda.so.1"
for lib in $libs; do
    d=$(find /usr/local/nvidia $roots -name "$lib" -not -path '*stubs*' -not -path '*compat*' \
        2>/dev/null | head -1 | xargs -r dirname)
    [ -n "$d" ] && case ":$dirs:" in *":$d:"*) ;; *) dirs="$dirs:$d" ;; esac
done
export LD_LIBRARY_PATH="${dirs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
if ldd "$BIN" | grep 'not found'; then
    echo "gpu.sh: the binary misses libraries (above)"
    exit 1
fi

stamp "CUDA tests"
if MEDU1_REQUIRE_FIXTURES=gpu timeout 240 "$W/cuda-tests" --test-threads=1 --nocapture 2>&1 | tee "$W/tests.txt"; then
    sum "CUDA tests: $(grep -E '^test result' "$W/tests.txt" | tail -1)"
else
    sum "CUDA tests: FAILED ($(grep -E '^test result|FAILED|panicked' "$W/tests.txt" | head -5 | tr '\n' ' '))"
fi

# Peak GPU memory of a command: nvidia-smi sampled every 100 ms, minus what was in use before.
gpu_used() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1; }
with_peak() {
    local name="$1"
    shift
    local base
    base=$(gpu_used)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$W/$name.mem" &
    local smi=$!
    "$@"
    local rc=$?
    kill "$smi" 2>/dev/null
    wait "$smi" 2>/dev/null
    local peak
    peak=$(sort -n "$W/$name.mem" | tail -1)
    echo "$(((${peak:-0} - base)))" >"$W/$name.peak_mib"
    return $rc
}

stamp "random-weight models"
for s in $SHAPES; do
    timeout 120 "$BIN" export --random "qwen2.5-$s" --seed 0 --format hf -o "$W/$s" >/dev/null ||
        echo "gpu.sh: export of $s failed"
done

stamp "generation throughput"
sum ""
sum "| generation, 128 new tokens, f32 | streams | load (s) | decode tok/s | GPU MiB |"
sum "|---|---|---|---|---|"
for s in $SHAPES; do
    for n in 1 8; do
        name="gen-$s-$n"
        with_peak "$name" timeout 150 "$BIN" generate --model "$W/$s" --device cuda --raw \
            --prompt "A 30-year-old man presents with fatigue, abdominal pain and constipation." \
            --n "$n" --temperature 1.0 --max-new-tokens 128 --ignore-eos >/dev/null 2>"$W/$name.err"
        rate=$(grep -oE 'decode: [0-9]+ tokens in [0-9.]+s = [0-9.]+ tok/s' "$W/$name.err" |
            grep -oE '[0-9.]+ tok/s' | cut -d' ' -f1)
        load=$(grep -oE 'loaded .* in [0-9.]+s' "$W/$name.err" | grep -oE '[0-9.]+s$' | tr -d s)
        [ -n "$rate" ] || tail -5 "$W/$name.err"
        sum "| qwen2.5-$s shape | $n | ${load:-?} | ${rate:-FAILED} | $(cat "$W/$name.peak_mib") |"
    done
done

stamp "GRPO step, medu1"
"$BIN" data prepare data/demo/mediq.json --budget none --chat-template qwen2.5 \
    -o "$W/mediq.jsonl" >/dev/null
sed -n '21p' "$W/mediq.jsonl" >"$W/item.jsonl"
GRPO_SHAPE="${GRPO_SHAPE:-0.5b}"
cat >"$W/grpo.toml" <<TOML
[model]
path = "$W/$GRPO_SHAPE"
device = "cuda"
[data]
budget = "none"
variant = "released"
max_prompt_tokens = 4096
chat_template = "qwen2.5"
train = [{ path = "data/demo/mediq.json", skip = 20, limit = 1 }]
val = []
[rollout]
prompts_per_step = 1
n = 8
temperature = 1.0
max_response_tokens = 128
prefill = ""
[algorithm]
use_kl_loss = true
kl = "k3"
kl_coef = 0.001
[optim]
lr = 1e-6
micro_batch_size = 8
[trainer]
steps = $STEPS
seed = 42
out_dir = "$W/medu1-out"
save_every = 0
val_before_train = false
val_every = 0
export_hf = false
TOML
with_peak medu1-grpo timeout 240 "$BIN" train --config "$W/grpo.toml" --overwrite ||
    echo "gpu.sh: medu1 train failed"

if [ "${SKIP_TRL:-0}" != 1 ]; then
    stamp "GRPO step, PyTorch + TRL"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$W/site" .gpu/whl/*.whl
    with_peak trl-grpo env PYTHONPATH="$W/site" GRADIENT_CHECKPOINTING=0 PYTHONUNBUFFERED=1 \
        timeout 300 python3 bench/trl_grpo.py "$W/$GRPO_SHAPE" "$W/item.jsonl" "$STEPS" 128 16 \
        "$W/trl-out" "$W/trl.json" || echo "gpu.sh: TRL failed"
fi

stamp "summary"
python3 - "$W" "$GRPO_SHAPE" <<'PY' | tee -a "$SUMMARY"
import json, os, statistics, sys
w, shape = sys.argv[1], sys.argv[2]
later = lambda xs: xs[1:] if len(xs) > 1 else xs
peak = lambda n: int(open(f"{w}/{n}.peak_mib").read()) if os.path.exists(f"{w}/{n}.peak_mib") else None
print()
print(f"| GRPO step, qwen2.5-{shape} shape, 1 x 8 x 128, f32 | step s (median after the first) | peak GPU MiB | completion tokens |")
print("|---|---|---|---|")
m = None
try:
    steps = [json.loads(l) for l in open(f"{w}/medu1-out/metrics.jsonl")]
    m = statistics.median(later([s["time/step_s"] for s in steps]))
    ph = {k: statistics.median(later([s[k] for s in steps])) for k in
          ("time/rollout_s", "time/reference_s", "time/update_s")}
    tok = statistics.mean(8 * s["train/response_len/mean"] for s in steps)
    print(f"| medu1 | {m:.2f} | {peak('medu1-grpo')} | {tok:.0f} |")
except Exception as e:
    print(f"| medu1 | FAILED ({e}) | | |")
try:
    trl = json.load(open(f"{w}/trl.json"))
    t = statistics.median(later(trl["step_s"]))
    print(f"| TRL {trl['trl']} (torch {trl['torch']}, {trl['device']}) | {t:.2f} | {peak('trl-grpo')} | {statistics.mean(trl['completion_tokens']):.0f} |")
    if m is not None:
        print(f"\nmedu1 / TRL step time: {m / t:.2f}x")
except Exception as e:
    print(f"| TRL | FAILED ({e}) | | |")
if m is not None:
    print("medu1 phases (median s): " + ", ".join(f"{k[5:-2]} {v:.2f}" for k, v in ph.items()))
PY
cp "$W/tests.txt" "$OUT_DIR/cuda-tests.txt" 2>/dev/null
stamp "done"
rm -rf "$W"
