#!/usr/bin/env bash
# Creates the Python venv in which crates/medu1-model/tests/peft.rs checks that PEFT applies
# medu1's LoRA adapters (adapter_model.safetensors + adapter_config.json) with medu1's logits.
# torch from PyPI is the CUDA wheel (a few GB with its nvidia libraries), as in
# integrations_venv.sh: the cold install is the slow part. The test reads MEDU1_PEFT_PYTHON; this
# script prints that line at the end.
#
# Usage: scripts/peft_venv.sh [VENV_DIR]   (default /tmp/medu1-peft-venv)
set -euo pipefail
VENV="${1:-/tmp/medu1-peft-venv}"
PY="${PYTHON:-python3}"
check='import torch, transformers, peft'
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "$check" 2>/dev/null; then
    echo "peft already installed in $VENV" >&2
else
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet torch==2.15.0 transformers==5.23.0 peft==0.21.2
    "$VENV/bin/python" -c "$check"
fi
echo "export MEDU1_PEFT_PYTHON=$VENV/bin/python"
