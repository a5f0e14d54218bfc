#!/usr/bin/env bash
# Generation speed of `medu1 generate` against llama.cpp (llama-cpp-python) on the same GGUF and
# prompt: single-stream prefill and decode tokens/s, and medu1's 8 samples x 128 tokens
# throughput, with the ratios the model-runtime issue's targets are stated in.
#
# Usage: bench/generate_vs_llamacpp.sh [MODEL.gguf]   (default: the embedded SmolLM2 GGUF)
# Env:   THREADS (default 2; llama.cpp threads), MEDU1_THREADS (default: THREADS, the same
#        threads on both sides), VENV (default /tmp/medu1-llamacpp-venv; reused if present),
#        NEW_TOKENS (default 128).
# Building llama-cpp-python from source takes about 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${MEDU1_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medu1}"
MODEL="${1:-$cache/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf}"
THREADS="${THREADS:-2}"
MEDU1_THREADS="${MEDU1_THREADS:-$THREADS}"
VENV="${VENV:-/tmp/medu1-llamacpp-venv}"
NEW_TOKENS="${NEW_TOKENS:-128}"
[ -f "$MODEL" ] || { echo "model $MODEL not found: run \`medu1 setup\` first" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "building llama-cpp-python into $VENV (about 5 minutes)..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  # Generic x86-64 build with the CPU's SIMD picked at run time; no BLAS (single-token decode
  # does not use it), no server extras.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=ON -DGGML_BLAS=OFF}" \
    "$VENV/bin/pip" install -q --no-cache-dir llama-cpp-python
fi

cargo build --release -q -p medu1-cli
BIN=target/release/medu1

SYSTEM="You are a careful medical assistant. Think step by step, then answer with the letter of the best option."
USER="A 45-year-old man presents with crushing chest pain radiating to the left arm, diaphoresis and nausea for the past hour. ECG shows ST elevation in leads II, III and aVF. Which coronary artery is most likely occluded? A) Left anterior descending B) Left circumflex C) Right coronary artery D) Left main"
PROMPT="<|im_start|>system
$SYSTEM<|im_end|>
<|im_start|>user
$USER<|im_end|>
<|im_start|>assistant
"

echo "== llama.cpp ($THREADS threads)" >&2
LLAMA_OUT=$(MODEL="$MODEL" PROMPT="$PROMPT" THREADS="$THREADS" NEW_TOKENS="$NEW_TOKENS" "$VENV/bin/python" - <<'PY'
import os, time
from llama_cpp import Llama
llm = Llama(model_path=os.environ["MODEL"], n_ctx=1024, n_threads=int(os.environ["THREADS"]),
            n_threads_batch=int(os.environ["THREADS"]), n_batch=512, verbose=False)
toks = llm.tokenize(os.environ["PROMPT"].encode(), add_bos=False, special=True)
n_new = int(os.environ["NEW_TOKENS"])
best_p, best_d = 0.0, 0.0
for _ in range(3):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(toks)
    t1 = time.perf_counter()
    tok = None
    for i in range(n_new):
        tok = llm.sample(temp=0.0)
        llm.eval([tok])
    t2 = time.perf_counter()
    best_p = max(best_p, len(toks) / (t1 - t0))
    best_d = max(best_d, n_new / (t2 - t1))
print(f"{len(toks)} {best_p:.1f} {best_d:.1f}")
PY
)
read -r L_PT L_PREFILL L_DECODE <<<"$LLAMA_OUT"
echo "llama.cpp: prompt $L_PT tokens, prefill $L_PREFILL tok/s, decode $L_DECODE tok/s" >&2

run_medu1() { # args...: prints "prefill_tok_s decode_tok_s wall_s generated"
  local start end line
  start=$(date +%s.%N)
  line=$("$BIN" generate --threads "$MEDU1_THREADS" --model "$MODEL" --raw \
    --prompt "$PROMPT" --max-new-tokens "$NEW_TOKENS" --ignore-eos "$@" 2>&1 >/dev/null | grep '^prefill:')
  end=$(date +%s.%N)
  # prefill: P tokens in Xs = A tok/s; decode: G tokens in Ys = B tok/s
  echo "$line" | awk -v s="$start" -v e="$end" '{print $7, $15, (e - s), $10}'
}

echo "== medu1 ($MEDU1_THREADS thread(s))" >&2
best_p=0; best_d=0
for _ in 1 2 3; do
  # --ignore-eos: fixed-length runs, as llama.cpp's loop below (it never stops early either).
  read -r p d _ _ <<<"$(run_medu1 --temperature 0)"
  best_p=$(awk -v a="$best_p" -v b="$p" 'BEGIN{print (b>a)?b:a}')
  best_d=$(awk -v a="$best_d" -v b="$d" 'BEGIN{print (b>a)?b:a}')
done
echo "medu1: prefill $best_p tok/s, decode $best_d tok/s (single stream, best of 3)" >&2

d8=0
for _ in 1 2 3; do
  read -r _ d _ gen8 <<<"$(run_medu1 --n 8 --temperature 0.7 --top-p 0.95 --seed 1)"
  d8=$(awk -v a="$d8" -v b="$d" 'BEGIN{print (b>a)?b:a}')
done
echo "medu1: 8 samples: $gen8 tokens, decode $d8 tok/s (best of 3)" >&2
# Every matrix requantized to Q8_0 (the default keeps the GGUF's Q4_1 blocks where it can).
read -r _ d8q _ gen8q <<<"$(run_medu1 --n 8 --temperature 0.7 --top-p 0.95 --seed 1 --quant q8_0)"
echo "medu1: 8 samples, --quant q8_0: $gen8q tokens, decode $d8q tok/s" >&2

echo
echo "| measure | llama.cpp | medu1 | ratio |"
echo "|---|---|---|---|"
awk -v a="$L_PREFILL" -v b="$best_p" 'BEGIN{printf "| single-stream prefill tok/s | %.1f | %.1f | %.2fx |\n", a, b, b/a}'
awk -v a="$L_DECODE" -v b="$best_d" 'BEGIN{printf "| single-stream decode tok/s | %.1f | %.1f | %.2fx |\n", a, b, b/a}'
awk -v b="$d8" 'BEGIN{printf "| 8 x %s decode tok/s (target 200) | - | %.1f | %.2fx of target |\n", "'"$NEW_TOKENS"'", b, b/200}'
awk -v b="$d8q" 'BEGIN{printf "| 8 x %s decode tok/s, --quant q8_0 | - | %.1f | %.2fx of target |\n", "'"$NEW_TOKENS"'", b, b/200}'
