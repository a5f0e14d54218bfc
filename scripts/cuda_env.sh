#!/usr/bin/env bash
# A CUDA 13.0 toolkit for building `--features cuda` on a machine without one (and without a
# GPU): NVIDIA's compiler, headers and libraries from PyPI, arranged as a toolkit root.
#
#   eval "$(scripts/cuda_env.sh)"          # nvcc + headers: enough for `cargo check/build`
#                                          # of the kernels (CI checks the feature this way)
#   eval "$(scripts/cuda_env.sh --link)"   # + cuBLAS, cuRAND, NVRTC and a libcuda stub to
#                                          # link the binary (bench/gpu.sh's medu1)
#
# Why 13.0: the PTX candle's kernels compile to must not be newer than the GPU's driver, and
# the lent H200 machines run driver 580 (CUDA 13.0) with torch 2.11+cu130, whose cuBLAS /
# NVRTC / cuRAND (.so.13 / .so.10) the binary then loads. CUDA_COMPUTE_CAP (default 90: H100,
# H200) picks the kernels' target.
#
# The libcuda.so written with --link is a stub with the driver API's symbols and nothing else,
# for the linker only: at run time the driver's own libcuda.so.1 is loaded.
#
# Usage: scripts/cuda_env.sh [--link] [VENV_DIR]   (default /tmp/medu1-cuda-venv)
set -euo pipefail
LINK=0
if [ "${1:-}" = "--link" ]; then
    LINK=1
    shift
fi
VENV="${1:-/tmp/medu1-cuda-venv}"
PY="${PYTHON:-python3}"
COMPILER=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85)
LIBS=(nvidia-cublas==13.0.2.14 nvidia-curand==10.4.5.25 nvidia-cuda-nvrtc==13.0.88)

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV" >&2
fi
want=("${COMPILER[@]}")
if [ "$LINK" = 1 ]; then
    want+=("${LIBS[@]}")
fi
missing=0
for p in "${want[@]}"; do
    "$VENV/bin/pip" show -q "${p%%==*}" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 1 ]; then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${want[@]}" >&2
fi
CU="$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')"
[ -x "$CU/bin/nvcc" ] || { echo "cuda_env.sh: no nvcc under $CU" >&2; exit 1; }

# One toolkit root: bin/ and include/ from the wheels, lib/ with the unversioned names a linker
# looks for (the wheels ship only the versioned ones).
ROOT="$VENV/toolkit"
mkdir -p "$ROOT/lib"
ln -sfn "$CU/bin" "$ROOT/bin"
ln -sfn "$CU/include" "$ROOT/include"
ln -sfn "$CU/nvvm" "$ROOT/nvvm"
for f in "$CU"/lib/lib*.so.*; do
    base="$(basename "$f")"
    ln -sfn "$f" "$ROOT/lib/$base"
    ln -sfn "$f" "$ROOT/lib/${base%%.so.*}.so"
done
if [ "$LINK" = 1 ] && [ ! -f "$ROOT/lib/libcuda.so" ]; then
    # Every driver API function of this toolkit's cuda.h, after its version macros
    # (cuCtxCreate -> cuCtxCreate_v4), as an empty function.
    gcc -E -P -I"$CU/include" -x c - <<<'#include <cuda.h>' |
        grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | sed 's/[[:space:]]*($//' | sort -u |
        sed 's/.*/void &(void) {}/' >"$ROOT/libcuda_stub.c"
    gcc -shared -fPIC -o "$ROOT/lib/libcuda.so" -Wl,-soname,libcuda.so.1 "$ROOT/libcuda_stub.c"
fi

echo "export PATH=\"$ROOT/bin:\$PATH\""
echo "export CUDA_HOME=\"$ROOT\""
echo "export CUDA_PATH=\"$ROOT\""
echo "export CUDARC_CUDA_VERSION=13000"
echo "export CUDA_COMPUTE_CAP=\"${CUDA_COMPUTE_CAP:-90}\""
echo "export LIBRARY_PATH=\"$ROOT/lib\${LIBRARY_PATH:+:\$LIBRARY_PATH}\""
