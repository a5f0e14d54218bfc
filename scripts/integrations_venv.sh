#!/usr/bin/env bash
# Creates the Python venv in which the framework integration tests drive verl, OpenRLHF and TRL's
# own code against medu1 (crates/medu1-cli/tests/frameworks.rs). One venv serves all three. Their
# pins do not quite agree: verl 0.9.1 wants transformers <5.11 and tensordict <=0.10, OpenRLHF
# 0.11.2 wants transformers ==5.15.0 and ray ==2.55.0, TRL 1.16 anything >=4.56.2. The venv takes
# transformers 5.10.4 (verl's range; OpenRLHF's agent executor only calls the tokenizer), tensordict
# 0.10.0 and ray 2.55.0. verl and OpenRLHF come with --no-deps (their full requirements pull vLLM,
# flash-attn, deepspeed); what their import chains need is listed.
# torch from PyPI is the CUDA wheel (a few GB with its nvidia libraries): the cold install is the
# slow part (see the README for measured times). The tests read MEDU1_FRAMEWORKS_PYTHON; this
# script prints that line at the end. PEFT rides along (no dependency beyond what is here) for
# medu1-model's tests/peft.rs (MEDU1_PEFT_PYTHON), so CI installs torch once.
#
# Usage: scripts/integrations_venv.sh [VENV_DIR]   (default /tmp/medu1-frameworks-venv)
set -euo pipefail
VENV="${1:-/tmp/medu1-frameworks-venv}"
PY="${PYTHON:-python3}"
check='import torch, transformers, peft, trl, verl, openrlhf.utils.agent, verl.utils.dataset.rl_dataset, verl.workers.reward_manager, verl.experimental.reward_loop.reward_manager'
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$check" 2>/dev/null; then
    echo "frameworks already installed in $VENV" >&2
else
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet torch==2.15.0 transformers==5.10.4 trl==1.16.0 peft==0.21.2 \
        datasets accelerate tensordict==0.10.0 ray==2.55.0 omegaconf codetiming pandas pyarrow \
        pillow aiohttp hydra-core pylatexenc orjson gguf
    "$VENV/bin/pip" install --quiet --no-deps verl==0.9.1 openrlhf==0.11.2
    "$VENV/bin/python" -c "$check"
fi
echo "export MEDU1_FRAMEWORKS_PYTHON=$VENV/bin/python"
