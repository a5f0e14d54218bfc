#!/usr/bin/env bash
# One GRPO step of medu1 against TRL's GRPOTrainer on the same model, prompts and settings:
# SmolLM2-135M-Instruct (the embedded GGUF; transformers dequantizes the same file to f32), one
# MediQ prompt x 8 completions per step, at most 128 completion tokens, temperature 1.0, KL
# (k3) coefficient 0.001 against a frozen reference, AdamW, CPU f32 on the same threads. Prints
# the median step time (first step excluded: warm-up) and peak RSS of each, and the ratios the
# trainer issue's targets are stated in (step time <= 0.5x TRL, memory <= PyTorch).
#
# Usage: bench/grpo_vs_trl.sh
# Env:   STEPS (default 5), THREADS (default 2), VENV (default /tmp/medu1-trl-venv; reused if
#        present), MAX_TOKENS (default 128), MEDU1_MICRO (micro-batch, default 8: one group).
# The venv holds torch + transformers + trl from PyPI (a few GB with torch's CUDA wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${MEDU1_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medu1}"
MODEL="$cache/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
STEPS="${STEPS:-5}"
THREADS="${THREADS:-2}"
VENV="${VENV:-/tmp/medu1-trl-venv}"
MAX_TOKENS="${MAX_TOKENS:-128}"
MEDU1_MICRO="${MEDU1_MICRO:-8}"
# Every step of both trainers uses this one MediQ item (the first training row of the demo
# data), so the step times compare the same prompt length; completions are sampled.
ITEM="${ITEM:-20}"
[ -f "$MODEL" ] || { echo "model $MODEL not found: run \`medu1 setup\` first" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import trl, gguf" 2>/dev/null; then
  echo "installing torch, transformers and trl into $VENV..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q torch==2.15.0 transformers==5.23.0 trl==1.16.0 datasets gguf accelerate
fi

cargo build --release -q -p medu1-cli
BIN=target/release/medu1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The same rendered Med-U1 prompt (system + user messages) for both.
"$BIN" data prepare data/demo/mediq.json --budget none --chat-template smollm2 \
  -o "$work/mediq.jsonl" >/dev/null
sed -n "$((ITEM + 1))p" "$work/mediq.jsonl" > "$work/item.jsonl"

echo "== TRL GRPOTrainer ($THREADS threads, $STEPS steps)" >&2
/usr/bin/time -f "%M" -o "$work/trl.rss" env OMP_NUM_THREADS="$THREADS" \
  "$VENV/bin/python" bench/trl_grpo.py "$MODEL" "$work/item.jsonl" "$STEPS" "$MAX_TOKENS" \
  "$THREADS" "$work/trl-out" "$work/trl.json" >&2
cat "$work/trl.json" >&2

echo "== medu1 train ($THREADS threads, $STEPS steps)" >&2
# The same settings as the TRL run, with no warm-up and no validation: only training steps.
cat > "$work/medu1.toml" <<TOML
[model]
path = "default"
rollout_quant = "q8_0"
[data]
budget = "none"
variant = "released"
max_prompt_tokens = 1024
chat_template = "model"
train = [{ path = "data/demo/mediq.json", skip = $ITEM, limit = 1 }]
val = []
[rollout]
prompts_per_step = 1
n = 8
temperature = 1.0
max_response_tokens = $MAX_TOKENS
prefill = ""
[algorithm]
use_kl_loss = true
kl = "k3"
kl_coef = 0.001
[optim]
lr = 2e-6
micro_batch_size = $MEDU1_MICRO
[trainer]
steps = $STEPS
seed = 42
out_dir = "$work/medu1-out"
save_every = 0
val_before_train = false
val_every = 0
export_hf = false
TOML
/usr/bin/time -f "%M" -o "$work/medu1.rss" env RAYON_NUM_THREADS="$THREADS" \
  "$BIN" train --config "$work/medu1.toml" >&2

python3 - "$work" <<'PY'
import json, statistics, sys
work = sys.argv[1]
trl = json.load(open(f"{work}/trl.json"))
steps = [json.loads(l) for l in open(f"{work}/medu1-out/metrics.jsonl")]
m_times = [s["time/step_s"] for s in steps][1:]
m_med = statistics.median(m_times)
t_med = statistics.median(trl["step_s"][1:])
m_rss = int(open(f"{work}/medu1.rss").read().split()[-1]) / 2**20
t_rss = int(open(f"{work}/trl.rss").read().split()[-1]) / 2**20
phases = {k: statistics.median(s[k] for s in steps[1:]) for k in
          ("time/rollout_s", "time/reference_s", "time/update_s")}
print(f"| | TRL {trl['trl']} (torch {trl['torch']}) | medu1 | medu1 / TRL |")
print("|---|---|---|---|")
print(f"| step time, median of steps 2..{len(steps)} (s) | {t_med:.1f} | {m_med:.1f} | {m_med / t_med:.2f}x |")
print(f"| peak RSS (GiB) | {t_rss:.2f} | {m_rss:.2f} | {m_rss / t_rss:.2f}x |")
print(f"| completion tokens per step, mean | {statistics.mean(trl['completion_tokens']):.0f} | "
      f"{statistics.mean(8 * s['train/response_len/mean'] for s in steps):.0f} | |")
print("medu1 phases (median s): " + ", ".join(f"{k[5:-2]} {v:.1f}" for k, v in phases.items()))
PY
