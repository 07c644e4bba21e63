#!/usr/bin/env bash
# Set up (see setup.sh), then open the console chat on the default bundled model over the seed articles.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/newsbot chat "$@"
