#!/usr/bin/env bash
# Slurm integration test: starts a real single-node Slurm (slurm/local-cluster.sh), submits the demo job
# with 2 tasks through slurm/popcode.sbatch and an array of two recordings with its dependent aggregation
# job through slurm/submit-array.sh, checks the results files, and stops the daemons it started.
# Exits 77 (ctest: skipped) only when the daemons cannot start here.
#   tests/slurm/test_slurm.sh POPCODE_BINARY
set -euo pipefail
binary=$(realpath "${1:?usage: test_slurm.sh POPCODE_BINARY}")
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/popcode_slurm_XXXXXX)
cleanup() {
  bash "$repo/slurm/local-cluster.sh" stop "$work/cluster" || true
  rm -rf "$work"
}
trap cleanup EXIT
if ! started=$(bash "$repo/slurm/local-cluster.sh" start "$work/cluster" 2>&1); then
  echo "SKIP: the local Slurm daemons could not start: $started"
  cat "$work"/cluster/log/*.log 2>/dev/null | tail -n 20 || true
  exit 77
fi
export SLURM_CONF=$work/cluster/slurm.conf
export POPCODE=$binary
if [[ "$(id -u)" == 0 ]]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
cd "$work"

# Waits for a job to leave the queue and prints its final state.
wait_for() {
  local id=$1 limit=$2
  for _ in $(seq "$limit"); do
    [[ -z "$(squeue -h -j "$id" 2>/dev/null)" ]] && break
    sleep 1
  done
  scontrol show job "$id" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -n 1
}
fail() {
  echo "FAIL: $*"
  tail -n 40 "$work"/*.out 2>/dev/null || true
  exit 1
}

# 1. The demo job on 2 tasks, scaled down (2,000 neurons x 500 images: every stage, about 5 s instead of 80;
# the full demo is README command 1). The --set options also check that sbatch passes arguments through.
demo=$(sbatch --parsable -n 2 "$repo/slurm/popcode.sbatch" "$repo/jobs/demo.toml" --set simulate.neurons=2000 \
  --set simulate.images=500)
state=$(wait_for "$demo" 600)
[[ "$state" == COMPLETED ]] || fail "demo job $demo ended in state '$state'"
grep -q "2 tasks" "popcode-$demo.out" || fail "the demo did not run on 2 tasks"
"$binary" summarize demo_results.h5 > demo.csv || fail "demo_results.h5 is not complete"
grep -q "complete" demo.csv || fail "demo results not complete: $(cat demo.csv)"
grep -q "2000" demo.csv || fail "the --set options did not reach the job: $(cat demo.csv)"
echo "demo job $demo: $(tail -n 1 demo.csv)"

# 2. An array over two recordings, then the aggregation job.
for seed in 1 2; do
  mpirun -n 1 "$binary" -q simulate --out "$work/rec$seed.h5" --neurons 300 --images 120 --seed "$seed"
done
printf '%s\n' "$work/rec1.h5" "$work/rec2.h5" > recordings.txt
printf '[job]\nstages = ["preprocess", "spectrum"]\nrecording = "from-the-array.h5"\n[spectrum]\nnshuff = 2\n' > analyse.toml
submitted=$(bash "$repo/slurm/submit-array.sh" analyse.toml recordings.txt out 1)
echo "$submitted"
aggregate=$(echo "$submitted" | sed -n 's/.*aggregation job \([0-9]*\).*/\1/p')
state=$(wait_for "$aggregate" 300)
[[ "$state" == COMPLETED ]] || fail "aggregation job $aggregate ended in state '$state'"
[[ $(grep -c ',complete,' out/summary.csv) == 2 ]] || fail "summary.csv lacks two complete rows: $(cat out/summary.csv)"
echo "PASS: demo on 2 tasks and a 2-recording array with aggregation ran under Slurm"
