#!/usr/bin/env bash
# The main job on a fresh machine: build medu1, fetch the embedded default model, then
#   1. read the bundled benchmark slice and build Med-U1 prompts (verl parquet + OpenRLHF labels),
#   2. score a handful of responses with the bit-exact Med-U1 reward,
#   3. train the embedded SmolLM2-135M-Instruct: supervised warm-up (cold start) then GRPO
#      (configs/demo-coldstart.toml), with validation before and after and training curves.
# Extra arguments go to `medu1 train` (e.g. --set trainer.steps=10 for a shorter run).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p medu1-cli
medu1=./target/release/medu1
$medu1 setup

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
case " $* " in *" --resume "*) mode=() ;; *) mode=(--overwrite) ;; esac
$medu1 train --config configs/demo-coldstart.toml "${mode[@]}" "$@"
