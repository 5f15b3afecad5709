#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz and runs each for a while on a scratch copy of its seed corpus.
#
#   tests/fuzz/run.sh [BUILD_DIR] [--merge]
#
# BUILD_DIR (default: build-fuzz in the repository root) receives the objects, the fuzzer binaries, the scratch
# corpora (corpus-<target>/), the logs (<target>.log) and anything a fuzzer finds (crashes-<target>/).
# Environment: FUZZ_SECONDS (default 20) per target, FUZZ_TIMEOUT (default 10) seconds per input before it
# counts as a hang, FUZZ_TARGETS (default: all) a space-separated subset, CXX (default clang++).
# --merge copies the inputs that found new coverage back into tests/fuzz/corpus/<target>/ (libFuzzer -merge=1);
# review and commit them.
# Exit status: 0 when every target ran clean, 1 when any build failed or any fuzzer found a crash, leak, OOM
# or timeout (the reproducer is in BUILD_DIR/crashes-<target>/; rerun it with BUILD_DIR/fuzz_<target> FILE).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
merge=0
build=""
for arg in "$@"; do
  case "$arg" in
    --merge) merge=1 ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) build="$arg" ;;
  esac
done
build=${build:-$repo/build-fuzz}
mkdir -p "$build"
build=$(cd "$build" && pwd)
seconds=${FUZZ_SECONDS:-20}
timeout=${FUZZ_TIMEOUT:-10}
cxx=${CXX:-clang++}

# The importer targets include MPI and parallel-HDF5 headers (through io/h5.hpp) and link them.
mpi_cflags=$(mpicxx --showme:compile 2>/dev/null || echo "-I/usr/lib/x86_64-linux-gnu/openmpi/include")
mpi_libs="$(mpicxx --showme:link 2>/dev/null) -L/usr/lib/x86_64-linux-gnu/hdf5/openmpi -lhdf5"

# The targets: name | sources (relative to the repository root; the first holds LLVMFuzzerTestOneInput) | libraries.
# Add a target by adding a line (and a seed corpus in tests/fuzz/corpus/<name>/).
TARGETS=(
  "npy    | tests/fuzz/fuzz_npy.cpp io/npy.cpp io/pickle.cpp            | -lfmt"
  "npz    | tests/fuzz/fuzz_npz.cpp io/npz.cpp io/npy.cpp io/pickle.cpp | -lfmt -lzip"
  "pickle | tests/fuzz/fuzz_pickle.cpp io/pickle.cpp io/npy.cpp         | -lfmt"
  "mat    | tests/fuzz/fuzz_mat.cpp io/importers/mat_import.cpp io/importers/common.cpp io/h5.cpp src/timing.cpp | -lfmt -lmatio $mpi_libs"
  "sensorium | tests/fuzz/fuzz_sensorium.cpp io/importers/sensorium_import.cpp io/importers/common.cpp io/npy.cpp io/pickle.cpp | -lfmt"
)

flags=(-std=c++20 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer "-I$repo"
       -isystem /usr/include/hdf5/openmpi $mpi_cflags)

trim() { local s="$1"; s="${s#"${s%%[![:space:]]*}"}"; echo "${s%"${s##*[![:space:]]}"}"; }

# Compiles one source into BUILD_DIR/obj unless the object is newer than the source and every header it
# included last time (from the compiler's dependency file).
compile() {
  local src="$1" obj="$build/obj/${1%.cpp}.o"
  local dep="${obj%.o}.d"
  mkdir -p "$(dirname "$obj")"
  if [[ -f "$obj" && -f "$dep" ]]; then
    local stale=0 f
    for f in $(sed -e 's/\\$//' -e 's/^[^:]*://' "$dep"); do
      if [[ "$f" -nt "$obj" ]]; then stale=1; break; fi
    done
    if [[ $stale == 0 ]]; then echo "$obj"; return 0; fi
  fi
  "$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link -MMD -MF "$dep" -c "$repo/$src" -o "$obj" >&2 || return 1
  echo "$obj"
}

status=0
summary=()
for line in "${TARGETS[@]}"; do
  IFS='|' read -r name sources libs <<< "$line"
  name=$(trim "$name")
  if [[ -n "${FUZZ_TARGETS:-}" && " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  echo "== $name: building" >&2
  objs=()
  ok=1
  for src in $sources; do
    if obj=$(compile "$src"); then objs+=("$obj"); else ok=0; break; fi
  done
  bin="$build/fuzz_$name"
  # shellcheck disable=SC2086  # $libs is a list of flags
  if [[ $ok == 0 ]] || ! "$cxx" "${flags[@]}" -fsanitize=fuzzer "${objs[@]}" $libs -o "$bin"; then
    summary+=("$name: BUILD FAILED")
    status=1
    continue
  fi

  seed="$repo/tests/fuzz/corpus/$name"
  work="$build/corpus-$name"
  crashes="$build/crashes-$name"
  log="$build/$name.log"
  rm -rf "$work"
  mkdir -p "$work" "$crashes" "$seed"
  cp -R "$seed/." "$work/"
  echo "== $name: fuzzing for ${seconds}s (log: $log)" >&2
  result=clean
  if ! "$bin" -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -artifact_prefix="$crashes/" -print_final_stats=1 "$work" > "$log" 2>&1; then
    result="FOUND A PROBLEM: $(grep -m1 -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error|deadly signal' "$log" || echo 'see log')"
    status=1
  fi
  execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}' || true)
  summary+=("$name: ${execs:-?} executions, $result")
  if [[ $merge == 1 && $result == clean ]]; then
    before=$(find "$seed" -type f | wc -l)
    "$bin" -merge=1 -timeout="$timeout" -rss_limit_mb=2048 -malloc_limit_mb=1024 "$seed" "$work" >> "$log" 2>&1
    after=$(find "$seed" -type f | wc -l)
    summary+=("$name: merged $((after - before)) new inputs into tests/fuzz/corpus/$name")
  fi
done

printf '%s\n' "${summary[@]}"
exit $status
