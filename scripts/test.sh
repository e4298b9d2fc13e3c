#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite (the command README.md gives).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_AUTH_MODE=disabled
.venv/bin/python -m pytest -q "$@"
