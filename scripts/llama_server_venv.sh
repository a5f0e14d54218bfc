#!/usr/bin/env bash
# Creates a Python venv with llama-cpp-python's OpenAI-compatible server, used by medu1-eval's
# real-server test (crates/medu1-eval/tests/openai_server.rs). The test runs only when
# MEDU1_LLAMA_PYTHON points at the venv's python; this script prints that line at the end.
#
# pip builds llama-cpp-python from source (no CPU wheels on PyPI): about 5-10 minutes on 2 cores.
# GGML_NATIVE=OFF keeps the build portable across CI machines.
#
# Usage: scripts/llama_server_venv.sh [VENV_DIR]   (default /tmp/medu1-llama-venv)
set -euo pipefail
VENV="${1:-/tmp/medu1-llama-venv}"
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp.server" 2>/dev/null; then
    echo "llama-cpp-python server already installed in $VENV"
else
    "$PY" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF}" \
    CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" \
        "$VENV/bin/pip" install "llama-cpp-python[server]==0.3.36"
    "$VENV/bin/python" -c "import llama_cpp.server"
fi
echo "export MEDU1_LLAMA_PYTHON=$VENV/bin/python"
