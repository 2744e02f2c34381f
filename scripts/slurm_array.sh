#!/usr/bin/env bash
# Run a list of models as a SLURM job array, every task writing into one results folder, then merge them.
#
# Usage:
#   scripts/slurm_array.sh [--dry-run] MODELS_FILE [RESULTS_DIR] [-- ARGS...]
#
#   MODELS_FILE  one model per line (blank lines and lines starting with # are ignored)
#   RESULTS_DIR  shared folder the tasks write into (default: results); the database is RESULTS_DIR/merged.json
#   ARGS         passed to every `mlee infer` (or `mlee train`) call, e.g. -- --backend pytorch --device cuda
#
# Submits one array job (task i measures model i) and a merge job that starts when every task has ended
# (afterany: a failed task still leaves its folder, which the merge records as failed or skipped with the
# reason). Each experiment folder records SLURM_JOB_ID as its job id. Exit codes: 0 submitted, 2 bad usage,
# 1 sbatch failed.
#
# Environment:
#   SBATCH_ARGS   extra sbatch options for the array tasks, e.g. "--gres=gpu:1 --time=02:00:00 -p gpu"
#   MERGE_SBATCH_ARGS  extra sbatch options for the merge job (default: "--time=00:30:00")
#   MLEE          the mlee command (default: mlee; e.g. "/path/to/venv/bin/mlee")
#   MLEE_TASK     infer (default) or train
#
# The same script runs inside the jobs: `--task MODELS_FILE RESULTS_DIR [-- ARGS]` (one array task) and
# `--merge RESULTS_DIR` (the final merge).
set -euo pipefail

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

models_of() {
    # Model names, one per line, without comments, blank lines or surrounding spaces.
    sed -e 's/#.*$//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$1" | grep -v '^$' || true
}

MLEE_CMD=${MLEE:-mlee}
TASK=${MLEE_TASK:-infer}
case "$TASK" in infer|train) ;; *) echo "error: MLEE_TASK must be infer or train, not '$TASK'" >&2; exit 2 ;; esac

mode=submit
dry_run=0
case "${1:-}" in
    --task) mode=task; shift ;;
    --merge) mode=merge; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help|"") usage ;;
esac

if [[ $mode == merge ]]; then
    results=${1:?--merge needs RESULTS_DIR}
    # --update: folders merged by an earlier array stay in the database; unchanged ones are not read again.
    exec $MLEE_CMD merge "$results" -o "$results/merged.json" --update
fi

models_file=${1:-}
[[ -n $models_file ]] || usage
shift
results=results
if [[ $# -gt 0 && $1 != -- ]]; then
    results=$1
    shift
fi
[[ ${1:-} == -- ]] && shift
extra=("$@")

if [[ $mode == task ]]; then
    index=${SLURM_ARRAY_TASK_ID:?--task runs inside a SLURM array task (SLURM_ARRAY_TASK_ID is not set)}
    model=$(models_of "$models_file" | sed -n "$((index + 1))p")
    if [[ -z $model ]]; then
        echo "error: $models_file has no model number $index (array index out of range)" >&2
        exit 2
    fi
    echo "task $index: $MLEE_CMD $TASK -m $model -o $results ${extra[*]:-}" >&2
    exec $MLEE_CMD "$TASK" -m "$model" -o "$results" "${extra[@]}"
fi

if [[ ! -r $models_file ]]; then
    echo "error: cannot read the model list $models_file (give a file with one model per line)" >&2
    exit 2
fi
count=$(models_of "$models_file" | wc -l | tr -d ' ')
if [[ $count -eq 0 ]]; then
    echo "error: $models_file lists no models (one per line; # starts a comment)" >&2
    exit 2
fi
mkdir -p "$results" "$results/slurm-logs"
models_abs=$(cd "$(dirname "$models_file")" && pwd)/$(basename "$models_file")
results_abs=$(cd "$results" && pwd)
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

# shellcheck disable=SC2206 # SBATCH_ARGS is a list of options, split on purpose
array_cmd=(sbatch --parsable --job-name=mlee-array --array="0-$((count - 1))"
           --output="$results_abs/slurm-logs/%A_%a.out" ${SBATCH_ARGS:-}
           "$script" --task "$models_abs" "$results_abs" -- "${extra[@]}")
if [[ $dry_run -eq 1 ]]; then
    printf '%q ' "${array_cmd[@]}"; echo
    echo "sbatch --parsable --job-name=mlee-merge --dependency=afterany:<array job id> ${MERGE_SBATCH_ARGS:---time=00:30:00} $script --merge $results_abs"
    exit 0
fi
if ! array_id=$("${array_cmd[@]}"); then
    echo "error: sbatch refused the array job" >&2
    exit 1
fi
array_id=${array_id%%;*}  # --parsable prints "jobid[;cluster]"
# shellcheck disable=SC2086
if ! merge_id=$(sbatch --parsable --job-name=mlee-merge --dependency="afterany:$array_id" \
        --output="$results_abs/slurm-logs/merge-%j.out" ${MERGE_SBATCH_ARGS:---time=00:30:00} \
        "$script" --merge "$results_abs"); then
    echo "error: sbatch refused the merge job (array job $array_id is queued; merge later with:" \
         "$MLEE_CMD merge $results_abs -o $results_abs/merged.json --update)" >&2
    exit 1
fi
merge_id=${merge_id%%;*}
echo "submitted array job $array_id ($count models) and merge job $merge_id; database: $results_abs/merged.json"
