#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite (the command README.md gives).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_AUTH_MODE=disabled
# One pytest worker per core (at most 4), each on one thread: tiny networks train fastest that
# way, and two workers with two OpenMP threads each on two cores would wait on each other.
workers=$(.venv/bin/python -c "import os; print(max(1, min(4, len(os.sched_getaffinity(0)))))")
export OMP_NUM_THREADS=1
.venv/bin/python -m pytest -q -n "$workers" --dist loadfile "$@"
