#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite (the command README.md gives).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_AUTH_MODE=disabled
# One pytest worker per core plus one (at most 4: many tests wait on subprocesses, Ray or a
# kill), each on one thread: tiny networks train fastest that way, and workers with several
# OpenMP threads each would wait on each other.
workers=$(.venv/bin/python -c "import os; print(min(4, len(os.sched_getaffinity(0)) + 1))")
export OMP_NUM_THREADS=1
.venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
