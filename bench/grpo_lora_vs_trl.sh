#!/usr/bin/env bash
# One GRPO step with LoRA: medu1 against TRL's GRPOTrainer + PEFT on a model in a released shape
# (random weights, written by `medu1 export --random`; no hub download exists here), with the
# same prompt and settings: one MediQ prompt rendered with Qwen2.5's chat template x 8
# completions of at most 128 tokens at temperature 1.0, KL (k3, beta 0.001) to the base with the
# adapter disabled, AdamW, rank-16 adapters (alpha 32) on all seven projections, CPU on the
# same threads. TRL + PEFT trains over the dense f32 base (its CPU path); medu1 over the same
# shape as a Q8_0 GGUF, which is what its LoRA is for: the base stays in the inference format.
# Prints the median step time (first step excluded when there are several) and peak RSS of
# each, their ratios, and medu1's phases.
#
# Usage: bench/grpo_lora_vs_trl.sh
# Env:   SHAPE (qwen2.5-1.5b, default, or qwen2.5-0.5b / qwen2.5-3b), STEPS (default 2),
#        THREADS (default 2), MAX_TOKENS (default 128), MEDU1_MICRO (medu1's micro-batch,
#        default 8: the whole group, as TRL's per-device batch), CHECKPOINT (medu1's
#        optim.activation_checkpointing, default true), RANK (default 16),
#        VENV (default /tmp/medu1-trl-venv; reused if present; peft is added), SKIP_TRL=1
#        (medu1 only), KEEP=DIR (keep the models and outputs in DIR).
set -euo pipefail
cd "$(dirname "$0")/.."

SHAPE="${SHAPE:-qwen2.5-1.5b}"
STEPS="${STEPS:-2}"
THREADS="${THREADS:-2}"
MAX_TOKENS="${MAX_TOKENS:-128}"
MEDU1_MICRO="${MEDU1_MICRO:-8}"
CHECKPOINT="${CHECKPOINT:-true}"
RANK="${RANK:-16}"
VENV="${VENV:-/tmp/medu1-trl-venv}"
ITEM="${ITEM:-20}"

if [ "${SKIP_TRL:-0}" != 1 ]; then
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import trl, peft" 2>/dev/null; then
    echo "installing torch, transformers, trl and peft into $VENV..." >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q torch==2.15.0 transformers==5.23.0 trl==1.16.0 peft==0.21.2 \
      datasets gguf accelerate
  fi
fi

cargo build --release -q -p medu1-cli
BIN=target/release/medu1
if [ -n "${KEEP:-}" ]; then
  work="$KEEP"; mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi

# The same random weights for both (seed 0): a Q8_0 GGUF for medu1, an HF folder for TRL.
[ -f "$work/$SHAPE.gguf" ] || "$BIN" export --random "$SHAPE" --seed 0 --format gguf \
  --quant q8_0 -o "$work/$SHAPE.gguf" >&2
[ -d "$work/$SHAPE-hf" ] || [ "${SKIP_TRL:-0}" = 1 ] || "$BIN" export --random "$SHAPE" \
  --seed 0 --format hf -o "$work/$SHAPE-hf" >&2

# The same rendered prompt text: TRL gets it as a plain prompt, medu1 renders the item with the
# same template.
"$BIN" data prepare data/demo/mediq.json --budget none --chat-template qwen2.5 \
  -o "$work/mediq.jsonl" >/dev/null
sed -n "$((ITEM + 1))p" "$work/mediq.jsonl" > "$work/item.jsonl"

if [ "${SKIP_TRL:-0}" != 1 ]; then
  echo "== TRL GRPOTrainer + PEFT LoRA r=$RANK on $SHAPE ($THREADS threads, $STEPS steps)" >&2
  rm -rf "$work/trl-out"
  /usr/bin/time -f "%M" -o "$work/trl.rss" env OMP_NUM_THREADS="$THREADS" LORA_RANK="$RANK" \
    LORA_ALPHA="$((2 * RANK))" LR=1e-4 \
    "$VENV/bin/python" bench/trl_grpo.py "$work/$SHAPE-hf" "$work/item.jsonl" "$STEPS" \
    "$MAX_TOKENS" "$THREADS" "$work/trl-out" "$work/trl.json" >&2
  cat "$work/trl.json" >&2
fi

echo "== medu1 train, [lora] r=$RANK on $SHAPE Q8_0 ($THREADS threads, $STEPS steps, micro-batch $MEDU1_MICRO, checkpointing $CHECKPOINT)" >&2
cat > "$work/medu1.toml" <<TOML
[model]
path = "$work/$SHAPE.gguf"
[data]
budget = "none"
variant = "released"
max_prompt_tokens = 4096
chat_template = "qwen2.5"
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
lr = 1e-4
micro_batch_size = $MEDU1_MICRO
activation_checkpointing = $CHECKPOINT
[lora]
rank = $RANK
alpha = $((2 * RANK))
targets = "all-linear"
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
  "$BIN" train --config "$work/medu1.toml" --overwrite >&2

python3 - "$work" "$SHAPE" "${SKIP_TRL:-0}" <<'PY'
import json, statistics, sys
work, shape, skip_trl = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
steps = [json.loads(l) for l in open(f"{work}/medu1-out/metrics.jsonl")]
later = lambda xs: xs[1:] if len(xs) > 1 else xs
m_med = statistics.median(later([s["time/step_s"] for s in steps]))
m_rss = int(open(f"{work}/medu1.rss").read().split()[-1]) / 2**20
phases = {k: statistics.median(later([s[k] for s in steps])) for k in
          ("time/rollout_s", "time/reference_s", "time/update_s")}
m_tok = statistics.mean(8 * s["train/response_len/mean"] for s in steps)
if skip_trl:
    print(f"| {shape}, LoRA | medu1 |\n|---|---|")
    print(f"| step time, median (s) | {m_med:.1f} |\n| peak RSS (GiB) | {m_rss:.2f} |")
    print(f"| completion tokens per step, mean | {m_tok:.0f} |")
else:
    trl = json.load(open(f"{work}/trl.json"))
    t_med = statistics.median(later(trl["step_s"]))
    t_rss = int(open(f"{work}/trl.rss").read().split()[-1]) / 2**20
    print(f"| {shape}, LoRA | TRL {trl['trl']} + PEFT {trl['peft']} (torch {trl['torch']}) | medu1 | medu1 / TRL |")
    print("|---|---|---|---|")
    print(f"| step time, median (s) | {t_med:.1f} | {m_med:.1f} | {m_med / t_med:.2f}x |")
    print(f"| peak RSS (GiB) | {t_rss:.2f} | {m_rss:.2f} | {m_rss / t_rss:.2f}x |")
    print(f"| completion tokens per step, mean | {statistics.mean(trl['completion_tokens']):.0f} | {m_tok:.0f} | |")
print("medu1 phases (median s): " + ", ".join(f"{k[5:-2]} {v:.1f}" for k, v in phases.items()))
PY
