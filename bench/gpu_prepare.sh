#!/usr/bin/env bash
# Prepares what bench/gpu.sh needs on a GPU machine that cannot build or download anything,
# in .gpu/ (git-ignored; carried to that machine, under 64 MiB with the tree):
#   medu1.xz       the release binary built with --features cuda, stripped and compressed
#   cuda-tests.xz  the CUDA test binary (crates/medu1-rl/tests/cuda.rs), likewise
#   whl/           TRL 1.16.0 and the packages it needs beyond that machine's image (datasets,
#                  dill, multiprocess), for the PyTorch + TRL side of the comparison
#
# Builds here with NVIDIA's CUDA 13.0 toolkit from PyPI (scripts/cuda_env.sh --link) into
# target/cuda, so the CPU build in target/ is left alone.
#
# Usage: bench/gpu_prepare.sh   then, with a GPU lent: the device tool's run, carrying .gpu,
#        with the command `bash bench/gpu.sh`
set -euo pipefail
cd "$(dirname "$0")/.."
cuda_env=$(scripts/cuda_env.sh --link)
eval "$cuda_env"
TARGET=target/cuda
cargo build --release -p medu1-cli --features cuda --target-dir "$TARGET"
tests=$(cargo test --release -p medu1-rl --features cuda --test cuda --no-run \
    --target-dir "$TARGET" --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda":
        print(m["executable"])')
[ -n "$tests" ] || { echo "gpu_prepare.sh: no CUDA test binary was built" >&2; exit 1; }

rm -rf .gpu
mkdir -p .gpu/whl
for pair in "$TARGET/release/medu1:medu1" "$tests:cuda-tests"; do
    src="${pair%%:*}"
    name="${pair##*:}"
    strip -o ".gpu/$name" "$src"
    xz -T0 -6 ".gpu/$name"
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/whl \
    trl==1.16.0 datasets==4.8.0 dill==0.4.0 multiprocess==0.70.18
du -sh .gpu .gpu/*
total=$(( $(du -sb .gpu | cut -f1) + $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) ))
echo "carried with the tree: $((total / 1048576)) MiB (the device tool's limit is 64 MiB)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "gpu_prepare.sh: over 64 MiB" >&2; exit 1; }
