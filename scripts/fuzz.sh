#!/usr/bin/env bash
# fuzz.sh - builds and runs sluice's libFuzzer targets (fuzz/) with clang, ASan and UBSan.
#   scripts/fuzz.sh build            configure (once) and build every fuzzer in build/fuzz
#   scripts/fuzz.sh TARGET SECONDS   build, then fuzz TARGET (e.g. xml) for SECONDS
#   scripts/fuzz.sh all SECONDS      every target in turn, SECONDS each
# A run fuzzes a scratch corpus, build/fuzz/corpus/TARGET, seeded from fuzz/corpus/TARGET (the
# committed seeds are never written; the scratch one keeps what it learns across runs). It
# prints executions and coverage, and exits nonzero when the target crashed, naming the
# reproducer (build/fuzz/artifacts/TARGET/crash-...; replay: build/fuzz/fuzz/TARGET_fuzzer FILE).
# fuzz/dict/TARGET.dict, where present, is passed as libFuzzer's dictionary.
#   FUZZ_BUILD_DIR (build/fuzz), FUZZ_CXX (clang++), FUZZ_JOBS (2): build settings.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${FUZZ_BUILD_DIR:-build/fuzz}
CXX_BIN=${FUZZ_CXX:-clang++}
JOBS=${FUZZ_JOBS:-2}

usage() {
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  echo "targets: $(targets | xargs)" >&2
  exit 2
}

targets() { for f in fuzz/*_fuzzer.cc; do basename "$f" _fuzzer.cc; done; }

build() {
  mkdir -p "$BUILD_DIR"
  # One build at a time: ctest starts several fuzz tests at once, and each builds first.
  exec 9>"$BUILD_DIR/.build.lock"
  flock 9
  local start=$SECONDS
  if [[ ! -f $BUILD_DIR/build.ninja ]]; then
    # Debug keeps assertions; -O1 as libFuzzer advises (several times the executions of -O0).
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER="$CXX_BIN" -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" -DSLUICE_FUZZ=ON -DSANITIZER=address,undefined >/dev/null
  fi
  cmake --build "$BUILD_DIR" --target fuzzers -j "$JOBS"
  echo "fuzz: build done in $((SECONDS - start)) s ($BUILD_DIR/fuzz/*_fuzzer)"
  exec 9>&-
}

# run TARGET SECONDS: fuzzes one target; returns nonzero on a crash.
run() {
  local t=$1 secs=$2
  local bin=$BUILD_DIR/fuzz/${t}_fuzzer
  if [[ ! -d fuzz/corpus/$t || ! -x $bin ]]; then
    echo "fuzz: no target '$t'" >&2
    usage
  fi
  local corpus=$BUILD_DIR/corpus/$t artifacts=$BUILD_DIR/artifacts/$t log=$BUILD_DIR/logs/$t.log
  mkdir -p "$corpus" "$artifacts" "$BUILD_DIR/logs"
  cp -r "fuzz/corpus/$t/." "$corpus/"
  local dict=()
  [[ -f fuzz/dict/$t.dict ]] && dict=(-dict="fuzz/dict/$t.dict")
  echo "fuzz: $t for $secs s (corpus $corpus, log $log)"
  local rc=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$bin" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1 || rc=$?
  local last execs
  last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if ((rc != 0)); then
    tail -n 60 "$log"
    local crash
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    echo "fuzz: $t: FAILED (exit $rc) after ${execs:-?} executions; reproducer: ${crash:-none written}"
    [[ -n $crash ]] && echo "fuzz: replay with: $bin $crash"
    return 1
  fi
  local cov ft
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  echo "fuzz: $t: ${execs:-?} executions in $secs s, cov: ${cov:-?} ft: ${ft:-?}, corpus $(ls "$corpus" | wc -l) inputs"
}

case ${1:-} in
  build)
    (($# == 1)) || usage
    build
    ;;
  all)
    (($# == 2)) && [[ $2 =~ ^[0-9]+$ ]] || usage
    build
    failed=()
    for t in $(targets); do run "$t" "$2" || failed+=("$t"); done
    if ((${#failed[@]})); then
      echo "fuzz: crashed: ${failed[*]}"
      exit 1
    fi
    ;;
  "" | -h | --help) usage ;;
  *)
    (($# == 2)) && [[ $2 =~ ^[0-9]+$ ]] || usage
    build
    run "$1" "$2"
    ;;
esac
