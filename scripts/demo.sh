#!/usr/bin/env bash
# Set up .venv if needed, then run a real, small search on the offline digits dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/pytorch-devol search "$@"
