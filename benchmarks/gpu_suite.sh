#!/usr/bin/env bash
# The GPU benchmark suite: everything docs/benchmarks.md's "still to measure on an H100/H200" asks for, in
# at most 9 minutes of wall time on one H100/H200, written under benchmarks/results/.
#
#   1. train_throughput.py  ours vs the tuned and the tutorial loop, all of MNIST, 1 epoch,
#                           4 genomes of the full DEvol space, interleaved rounds; TFLOP/s
#                           against the measured bf16/fp32 matmul rate
#                           -> train_throughput_cuda.{json,md}
#   2. parallel_scaling.py  in-process vs K = 1, 2, 4, 8 workers per GPU (the sweep that sets
#                           the default K), 12,000 MNIST training images, 1 epoch
#                           -> parallel_cuda.{json,md}
#   3. devol_mnist.py       a time-boxed slice of DEvol's whole experiment (20 x 50, up to 6 conv
#                           / 4 dense, 10 epochs, all of MNIST) with the best K of step 2:
#                           candidates per minute and the projected time for all 1,000
#                           -> devol_mnist_<gpu>_gpu-suite-slice.{json,png}, run dir in
#                              results/runs/ (its best.pt is git-ignored)
#   4. gpu_suite_summary.py -> gpu_suite_<tag>.{json,md}: each step's wall time and exit code,
#                              the steps that got no time or finished nothing, and the headline
#                              figures. Logs: results/gpu_suite_logs/.
# The budget is shared out up front: each step's hard limit (`timeout`) is a fixed share of the
# total (at the default 9 minutes: environment 60 s, step 1 160 s, step 2 170 s, summary 20 s,
# step 3 the remaining 125 s plus whatever the steps before it left unused), so a step that
# overruns is stopped within its own share and cannot eat a later step's. Inside its share each
# step of the real suite has a soft budget (--max-minutes: it stops starting new work and
# writes what it has). A step that fails or runs out of time is recorded and the suite goes
# on; a step that finished nothing still writes its result, saying so. The dry run sizes its
# steps by count (one genome, one round, two candidates) and gives them no soft budget: the
# work, not the machine's speed, ends each step.
#
# It assumes only the repository's working tree. The GPU machine sees nothing beside it, so copy
# MNIST into the git-ignored folder datasets/ of the checkout first (.gitignore has /datasets/)
# and name that folder in the device tool's `carry`:
#     mkdir -p datasets/MNIST && cp -r ../shared/datasets/MNIST/raw datasets/MNIST/   # ~11 MB
#     run(command="bash benchmarks/gpu_suite.sh && cp -r benchmarks/results/. \$OUT/",
#         carry=["datasets"], timeout_s=600)
# The scripts look for data in $PYTORCH_DEVOL_DATA, then <repo>/datasets, then
# <repo>/../shared/datasets. Python: $PYTHON, else python3 (the GPU machine's CUDA torch).
#
#   bash benchmarks/gpu_suite.sh                  # the real suite (needs CUDA)
#   bash benchmarks/gpu_suite.sh --dry-run        # CPU, tiny sizes, ~40 s: what CI runs
#   options: --out-dir DIR (default benchmarks/results; the dry run's default is a temporary
#            folder, never benchmarks/results), --minutes M (total wall budget: default 9,
#            in the dry run 3; the shares scale with it)
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=0
OUT_DIR=""
MINUTES=""
while (($#)); do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out-dir) OUT_DIR="$2"; shift ;;
        --minutes) MINUTES="$2"; shift ;;
        -h|--help) sed -n '2,44p' "$0"; exit 0 ;;
        *) echo "gpu_suite.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ -z "$MINUTES" ]]; then
    if ((DRY)); then MINUTES=3; else MINUTES=9; fi
fi
if [[ -z "${PYTHON:-}" ]]; then
    if ((DRY)) && [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if [[ -z "$OUT_DIR" ]]; then
    if ((DRY)); then OUT_DIR="$(mktemp -d)/results"; else OUT_DIR=benchmarks/results; fi
fi
mkdir -p "$OUT_DIR/gpu_suite_logs" "$OUT_DIR/runs"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1
TAG=$( ((DRY)) && echo cpu-dry-run || echo cuda )
STEPS="$OUT_DIR/gpu_suite_logs/steps_$TAG.tsv"
: > "$STEPS"
TOTAL=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')
DEADLINE=$((SECONDS + TOTAL - 5))
echo "gpu_suite: tag $TAG, $TOTAL s budget, results in $OUT_DIR, python $PYTHON"

# share BASE -> a step's fixed share of the budget: BASE seconds of the default budget
# (DEFAULT_TOTAL), scaled to the budget of --minutes; never under 10 s (what a step needs to start).
share() {
    awk -v b="$1" -v t="$TOTAL" -v d="$DEFAULT_TOTAL" \
        'BEGIN { s = int(b * (t - 5) / (d - 5)); print (s < 10 ? 10 : s) }'
}
minutes() { awk -v s="$1" 'BEGIN { m = s / 60; if (m < 0.05) m = 0.05; printf "%.2f", m }'; }

# run_step NAME CAP_S COMMAND...: run it so that it ends within CAP_S seconds (TERM after
# CAP_S - 5, KILL 5 s later), log it, record its exit code and wall time.
run_step() {
    local name=$1 cap=$2
    shift 2
    if ((cap < 10)); then
        echo "gpu_suite: skip $name (its share, $cap s, is too small to start it)"
        printf '%s\tskipped\t0\t%s\n' "$name" "$cap" >> "$STEPS"
        return 0
    fi
    echo "gpu_suite: $name (hard limit $cap s): $*"
    local t0=$SECONDS rc
    set +e
    timeout --kill-after=5 "$((cap - 5))" "$@" 2>&1 | tee "$OUT_DIR/gpu_suite_logs/${name}_$TAG.log"
    rc=${PIPESTATUS[0]}
    set -e
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - t0))" "$cap" >> "$STEPS"
    echo "gpu_suite: $name finished, exit $rc, $((SECONDS - t0)) s"
}

# The shares, fixed before anything runs (seconds at the default budget, scaled).
if ((DRY)); then
    DEFAULT_TOTAL=180
    ENV_S=$(share 20) TT_S=$(share 35) PAR_S=$(share 55) SUMMARY_S=$(share 20)
else
    DEFAULT_TOTAL=540
    ENV_S=$(share 60) TT_S=$(share 160) PAR_S=$(share 170) SUMMARY_S=$(share 20)
fi
DEVOL_S=$((TOTAL - 5 - ENV_S - TT_S - PAR_S - SUMMARY_S))  # its floor: it also gets what is left
echo "gpu_suite: shares: environment $ENV_S s, train_throughput $TT_S s, parallel_scaling" \
     "$PAR_S s, devol_slice at least $DEVOL_S s, summary $SUMMARY_S s"

# 0. The environment: CUDA (or the dry run's CPU), the package importable, a GPU description.
ENV_JSON="$OUT_DIR/gpu_suite_logs/environment_$TAG.json"   # the suite's first output
run_step environment "$ENV_S" "$PYTHON" - "$DRY" "$ENV_JSON" <<'EOF'
import json, platform, subprocess, sys
import torch
sys.path.insert(0, ".")
import pytorch_devol, attrs, numpy  # noqa: E401,F401  (fail here, not mid-suite)
dry = sys.argv[1] == "1"
info = {"python": platform.python_version(), "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda}
if torch.cuda.is_available():
    info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    try:
        info["nvidia_smi"] = subprocess.run(["nvidia-smi"], capture_output=True, text=True,
                                            timeout=20).stdout
    except Exception as exc:  # noqa: BLE001
        info["nvidia_smi"] = repr(exc)
json.dump(info, open(sys.argv[2], "w"), indent=1)
print(json.dumps({k: v for k, v in info.items() if k != "nvidia_smi"}))
if not dry and not torch.cuda.is_available():
    sys.exit("gpu_suite: no CUDA device; use --dry-run on a CPU machine")
EOF
if [[ "$(tail -n1 "$STEPS" | cut -f2)" != "0" ]]; then
    echo "gpu_suite: the environment check failed (see above); nothing else is run" >&2
    exit 1
fi

if ((DRY)); then
    # Sized by count, as small as still runs every code path. No --max-minutes anywhere: the
    # work, not the machine's speed, ends each step (the shares above are only hard limits).
    DEVICE=cpu
    SPACE=(--max-conv-layers 2 --max-dense-layers 2 --max-filters 16 --max-dense-nodes 32)
    TT_SIZE=(--dataset mnist --train-size 500 --test-size 200 --n-genomes 1 --epochs 1
             --repeats 1 --threads 1 "${SPACE[@]}"
             --matmul-size 128 --matmul-repeats 1 --matmul-seconds 0.05)
    PAR_SIZE=(--dataset mnist --train-size 500 --test-size 200 --n-genomes 1 --epochs 1
              --rounds 1 --min-seconds 0 --workers 1 "${SPACE[@]}")
    DEVOL_SIZE=(--generations 1 --population 2 --epochs 1 --train-size 500 --test-size 200
                "${SPACE[@]}")
    TT_BUDGET=() PAR_BUDGET=()
    K_DEFAULT=1
else
    DEVICE=cuda
    TT_SIZE=(--dataset mnist --train-size 60000 --test-size 10000 --epochs 1 --n-genomes 4
             --repeats 3 --max-conv-layers 6 --max-dense-layers 4 --max-filters 256
             --max-dense-nodes 1024)
    PAR_SIZE=(--dataset mnist --train-size 12000 --test-size 2000 --epochs 1 --n-genomes 12
              --workers-per-gpu 1,2,4,8 --rounds 2 --min-seconds 12)
    DEVOL_SIZE=()   # the full experiment's settings, stopped by --max-minutes
    # Soft budgets inside the shares; the margins cover what follows them (the last candidate
    # or measurement, the matmul rate, writing the results, stopping the workers).
    TT_BUDGET=(--max-minutes "$(minutes $((TT_S - 35)))")
    PAR_BUDGET=(--max-minutes "$(minutes $((PAR_S - 35)))")
    DEVOL_MARGIN=75
    K_DEFAULT=4
fi

# 1. Training throughput: ours vs tuned vs tutorial.
run_step train_throughput "$TT_S" "$PYTHON" benchmarks/train_throughput.py --device "$DEVICE" \
    "${TT_SIZE[@]}" ${TT_BUDGET[@]+"${TT_BUDGET[@]}"} --tag "$TAG" \
    --out-dir "$OUT_DIR" --note "run by benchmarks/gpu_suite.sh"

# 2. Workers per GPU (CPU dry run: in-process vs one worker).
run_step parallel_scaling "$PAR_S" "$PYTHON" benchmarks/parallel_scaling.py --device "$DEVICE" \
    "${PAR_SIZE[@]}" ${PAR_BUDGET[@]+"${PAR_BUDGET[@]}"} --tag "$TAG" \
    --out-dir "$OUT_DIR" --note "run by benchmarks/gpu_suite.sh"

# 3. A time-boxed slice of DEvol's whole experiment with the best K of step 2 (K_DEFAULT when
#    step 2 measured no pool).
K=$("$PYTHON" - "$OUT_DIR/parallel_$TAG.json" "$K_DEFAULT" <<'EOF' || echo "$K_DEFAULT"
import json, sys
best = json.load(open(sys.argv[1]))["best_pool"]
print((best["workers_per_gpu"] or best["workers"]) if best else sys.argv[2])
EOF
)
if ((DRY)); then K_ARGS=(--workers "$K"); else K_ARGS=(--workers-per-gpu "$K"); fi
RUN_DIR="$OUT_DIR/runs/devol_mnist_${TAG}_gpu-suite-slice"
rm -rf "$RUN_DIR" "$RUN_DIR.csv"     # this suite's own previous slice
cap=$((DEADLINE - SECONDS - SUMMARY_S))   # what is left, the summary's share kept ...
((cap > DEVOL_S)) || cap=$DEVOL_S         # ... and never less than its own share
if ((DRY)); then
    DEVOL_BUDGET=()
else
    DEVOL_BUDGET=(--max-minutes "$(minutes $((cap - DEVOL_MARGIN)))")
fi
run_step devol_slice "$cap" "$PYTHON" benchmarks/devol_mnist.py --device "$DEVICE" \
    ${DEVOL_SIZE[@]+"${DEVOL_SIZE[@]}"} "${K_ARGS[@]}" ${DEVOL_BUDGET[@]+"${DEVOL_BUDGET[@]}"} \
    --tag gpu-suite-slice --run-dir "$RUN_DIR" --out-dir "$OUT_DIR" --quiet \
    --note "run by benchmarks/gpu_suite.sh with K=$K from parallel_$TAG.json"

# 4. Summary.
run_step summary "$SUMMARY_S" "$PYTHON" benchmarks/gpu_suite_summary.py \
    --out-dir "$OUT_DIR" --tag "$TAG" --total-seconds "$TOTAL"
echo "gpu_suite: done in $SECONDS s; results in $OUT_DIR (summary gpu_suite_$TAG.md)"
awk -F'\t' '$2 != "0" { bad = 1 } END { exit bad }' "$STEPS"
