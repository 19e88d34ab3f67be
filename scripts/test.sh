#!/usr/bin/env bash
# test.sh - the whole test suite, from a fresh Debian 12 machine (as root): installs the
# packages (scripts/setup.sh), builds with AddressSanitizer + UndefinedBehaviorSanitizer, and
# runs every test with ctest, real servers included (Ceph RGW, HTTP). Idempotent.
#   BUILD_DIR  build directory (default build/asan)
#   SANITIZER  sanitizers to build with (default address,undefined; empty for none)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build/asan}
SANITIZER=${SANITIZER-address,undefined}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSANITIZER="$SANITIZER" >/dev/null
cmake --build "$BUILD_DIR"
# No test reaches an EC2 metadata service by accident (the credential chain asks it last); the
# IMDSv2 test points the chain at a fake one of its own.
export AWS_EC2_METADATA_DISABLED=${AWS_EC2_METADATA_DISABLED:-true}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$BUILD_DIR"
set +e
ctest --output-on-failure -j2 --timeout 900 | tee ctest-output.log
status=${PIPESTATUS[0]}
# ctest prints its label and timing summary after the verdict; end with the verdict.
grep -E '^[0-9]+% tests passed' ctest-output.log | tail -1
exit "$status"
