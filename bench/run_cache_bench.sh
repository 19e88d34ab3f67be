#!/usr/bin/env bash
# run_cache_bench.sh - the cache worker's figures (issue: the cache worker), each against its
# baseline in the same run: 32 cold readers of one object, warm disk-tier reads vs the disk,
# RPC vs plain TCP, restart with 100,000 pages, and worker RSS under a 4-reader load.
# Writes bench/results/cache.json and prints a markdown table. Needs root (drops caches).
#   SCRATCH  scratch directory on the disk to measure (default /var/tmp/sluice-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target cache_bench sluice | grep -v '^\[' || true
BENCH=$PWD/build/release/bench/cache_bench
SLUICE=$PWD/build/release/src/cli/sluice
SCRATCH=${SCRATCH:-/var/tmp/sluice-bench}
OUT=bench/results
mkdir -p "$OUT"
rm -rf "$SCRATCH"; mkdir -p "$SCRATCH"
LOCAL_PID=
cleanup() { [ -n "$LOCAL_PID" ] && kill "$LOCAL_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$SCRATCH"; }
trap cleanup EXIT

results=()
for mode in cold-readers rpc-vs-tcp warm-disk restart; do
  echo "== $mode" >&2
  results+=("$("$BENCH" "$mode" "$SCRATCH/$mode" 2>/dev/null | tail -n 1)")
done

echo "== rss: sluice local, 256 MiB memory tier, 4 readers of 4 x 128 MiB" >&2
mkdir -p "$SCRATCH/rss/ufs"
for i in 0 1 2 3; do head -c $((128 << 20)) /dev/urandom >"$SCRATCH/rss/ufs/f$i.bin"; done
export SLUICE_HOME=$SCRATCH/rss/home
"$SLUICE" local --ufs "file://$SCRATCH/rss/ufs" --memory-size 256MiB --cache-dir "$SCRATCH/rss/cache" \
  --cache-size 2GiB --rpc-port 0 --http-port 0 >"$SCRATCH/rss/local.log" 2>&1 &
LOCAL_PID=$!
for _ in $(seq 100); do "$SLUICE" report >/dev/null 2>&1 && break; sleep 0.1; done
for pass in cold warm; do
  for i in 0 1 2 3; do "$SLUICE" fs cat "/f$i.bin" >/dev/null & done
  wait $(jobs -p | grep -v "^$LOCAL_PID$") 2>/dev/null || true
done
hwm_kib=$(awk '/VmHWM/ {print $2}' "/proc/$LOCAL_PID/status")
kill "$LOCAL_PID"; wait "$LOCAL_PID" 2>/dev/null || true; LOCAL_PID=
results+=("{\"bench\": \"rss\", \"peak_rss_mib\": $((hwm_kib / 1024)), \"memory_quota_mib\": 256, \"limit_mib\": $((256 + 150))}")

{
  echo "["
  for i in "${!results[@]}"; do printf '  %s%s\n' "${results[$i]}" "$([ "$i" -lt $((${#results[@]} - 1)) ] && echo ,)"; done
  echo "]"
} >"$OUT/cache.json"
echo
echo "| benchmark | result |"
echo "|---|---|"
for r in "${results[@]}"; do echo "| $(echo "$r" | sed -E 's/.*"bench": "([^"]+)".*/\1/') | \`$r\` |"; done
echo
echo "(written to $OUT/cache.json)"
