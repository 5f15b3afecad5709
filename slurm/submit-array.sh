#!/usr/bin/env bash
# Submits a reanalysis of every recording in a list (one array task each, TASKS MPI ranks per task) and an
# aggregation job that runs after all of them, whatever their outcome.
#   slurm/submit-array.sh JOB.toml RECORDINGS.txt OUTDIR [TASKS=2] [extra sbatch options...]
# Prints the two Slurm job ids.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
job=${1:?usage: submit-array.sh JOB.toml RECORDINGS.txt OUTDIR [TASKS]}
list=${2:?usage: submit-array.sh JOB.toml RECORDINGS.txt OUTDIR [TASKS]}
outdir=${3:?usage: submit-array.sh JOB.toml RECORDINGS.txt OUTDIR [TASKS]}
tasks=${4:-2}
shift $(( $# < 4 ? $# : 4 ))
count=$(grep -cv '^\s*\(#\|$\)' "$list" || true)
(( count > 0 )) || { echo "submit-array: $list lists no recordings" >&2; exit 2; }
mkdir -p "$outdir"
array=$(sbatch --parsable --array=0-$((count - 1)) -n "$tasks" "$@" "$here/popcode-array.sbatch" "$job" "$list" "$outdir")
array=${array%%;*}
aggregate=$(sbatch --parsable -n 1 --dependency=afterany:"$array" "$@" "$here/aggregate.sbatch" "$outdir")
echo "array job $array ($count recordings), aggregation job ${aggregate%%;*}"
