#!/usr/bin/env bash
# run_cluster_bench.sh - the distributed cache against the under-store it fronts, in one run:
# scripts/cluster.sh's workers (each in a network namespace of its own) over Ceph RGW behind
# tests/fixtures/fault_proxy (on the cluster's bridge, LATENCY_MS of first-byte latency).
#   load        `sluice load` of 10,000 x 100 KiB with replicas 2, against the store's own
#               parallel GET rate (`sluice ufs read -j 64`, no cache, same proxy, same run);
#               the store bytes the load read, against the dataset's size
#   stall       a 2 GiB file (replicas 2, loaded) read sequentially through FUSE while one
#               worker is SIGKILLed: the longest wait between two 1 MiB reads
#   cpu         CPU seconds (all sluice processes: workers and the FUSE client) per GiB of
#               warm reads through FUSE, with 3 workers and with 1
# Writes bench/results/cluster.json and cluster.md.
#   LATENCY_MS  the proxy's first-byte latency (default 20)
#   SCRATCH     scratch directory (default /var/tmp/sluice-cluster-bench)
# About 8 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target sluice fault_proxy | grep -v '^\[' || true
B=$PWD/build/release
SLUICE=$B/src/cli/sluice
PROXY=$B/tests/support/fault_proxy
LATENCY_MS=${LATENCY_MS:-20}
S=${SCRATCH:-/var/tmp/sluice-cluster-bench}
OUT=$PWD/bench/results
mkdir -p "$OUT"
export SLUICE_BINARY=$SLUICE SLUICE_CLUSTER_DIR=$S/cluster WORKER_MEMORY=${WORKER_MEMORY:-512MiB} WORKER_DISK=${WORKER_DISK:-4GiB}
umount "$S/mnt" 2>/dev/null || true
bash scripts/cluster.sh down 2>/dev/null || true
rm -rf "$S"; mkdir -p "$S/data/many" "$S/data/big" "$S/mnt"
PIDS=()
cleanup() {
  umount "$S/mnt" 2>/dev/null || fusermount3 -u "$S/mnt" 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash scripts/cluster.sh down 2>/dev/null || true
  bash tests/fixtures/radosgw.sh stop "$S/rgw" >/dev/null 2>&1 || true
  rm -rf "$S"
}
trap cleanup EXIT
log() { echo "== $*" >&2; }
wait_mount() { for _ in $(seq 400); do grep -q " $1 " /proc/self/mountinfo && return 0; sleep 0.05; done; return 1; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

log "dataset: 10,000 x 100 KiB and one 2 GiB file, into RGW"
/usr/bin/python3 - "$S/data" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(3)
for i in range(10000):
    with open(f"{root}/many/s{i:05d}.bin", "wb") as f: f.write(rng.randbytes(100 * 1024))
with open(f"{root}/big/shard.bin", "wb") as f:
    for _ in range(2048): f.write(rng.randbytes(1 << 20))
PY
PORT=$((20000 + RANDOM % 20000))
eval "$(bash tests/fixtures/radosgw.sh start "$S/rgw" "$PORT" bench)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
RGW=$AWS_ENDPOINT_URL
unset AWS_ENDPOINT_URL
"$SLUICE" ufs cp -R "$S/data" s3://bench -o "endpoint=$RGW" >/dev/null
rm -rf "$S/data"

# Up: the cluster, then the proxy on its bridge.
up() {
  local n=$1
  eval "$(bash scripts/cluster.sh up "$n")"
  BRIDGE=$(bash scripts/cluster.sh status | sed -n '1s|.*http://\([0-9.]*\):.*|\1|p')
  "$PROXY" "$RGW" --port-file "$S/proxy.port" --port 0 --host "$BRIDGE" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do [[ -s $S/proxy.port ]] && break; sleep 0.05; done
  STORE=http://$BRIDGE:$(cat "$S/proxy.port")
  curl -fs "$STORE/__proxy__/set?latency_ms=$LATENCY_MS" >/dev/null
  (umask 077; printf %s "$AWS_SECRET_ACCESS_KEY" >"$S/secret_key")
  "$SLUICE" mount add /b s3://bench --replicas 2 -o "endpoint=$STORE" -o "access_key=$AWS_ACCESS_KEY_ID" \
    -o "secret_key_file=$S/secret_key" >/dev/null
}
down() {
  umount "$S/mnt" 2>/dev/null || true
  kill "${PIDS[-1]}" 2>/dev/null || true
  bash scripts/cluster.sh down
  rm -f "$S/proxy.port"
}
stat_of() { curl -fs "$STORE/__proxy__/stats" | awk -v k="$1" '$1 == k {print $2}'; }
# CPU seconds (user + system) of every sluice process so far.
cpu_seconds() {
  local total=0 pid
  for pid in $(pgrep -x sluice); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "scale=3; $total / $(getconf CLK_TCK)" | bc
}
fuse_up() {
  "$SLUICE" fuse "$S/mnt" >"$S/fuse.log" 2>&1 &
  wait_mount "$S/mnt"
}
# A sequential reader of $1 that prints "seconds max_gap_seconds" (1 MiB reads).
READER='
import sys, time
gaps = []; start = last = time.monotonic()
with open(sys.argv[1], "rb", buffering=0) as f:
    while f.read(1 << 20):
        now = time.monotonic(); gaps.append(now - last); last = now
print(f"{last - start:.3f} {max(gaps):.3f}")
'

log "3 workers: load vs direct parallel GETs"
up 3
drop
direct=$("$SLUICE" ufs read -j 64 "s3://bench/many" -o "endpoint=$STORE" | sed -E 's/.*: ([0-9.]+) MiB\/s, ([0-9]+) files\/s.*/\2/')
curl -fs "$STORE/__proxy__/reset-stats" >/dev/null
t0=$(date +%s.%N)
"$SLUICE" load /b/many --wait >"$S/load.out"
t1=$(date +%s.%N)
load_rate=$(echo "scale=1; 10000 / ($t1 - $t0)" | bc)
store_bytes=$(stat_of bytes_to_client)
store_gets=$(stat_of GET)
dataset=$((10000 * 102400))
log "direct $direct files/s; load $load_rate files/s; store bytes $store_bytes for $dataset; GETs $store_gets"
cached=$("$SLUICE" fs check-cached /b/many)

log "stall: SIGKILL of a worker during a 2 GiB sequential read (replicas 2)"
"$SLUICE" load /b/big --wait >/dev/null
fuse_up
drop
/usr/bin/python3 -c "$READER" "$S/mnt/b/big/shard.bin" >"$S/stall.out" &
reader=$!
sleep 2
bash scripts/cluster.sh kill 2
wait "$reader"
read -r stall_secs stall_gap <"$S/stall.out"
log "read 2 GiB in $stall_secs s; longest wait $stall_gap s"
bash scripts/cluster.sh start 2

cpu_pass() {  # warm read of the 2 GiB file through FUSE; prints CPU seconds per GiB
  /usr/bin/python3 -c "$READER" "$S/mnt/b/big/shard.bin" >/dev/null  # warm every tier
  drop
  local c0 c1
  c0=$(cpu_seconds)
  /usr/bin/python3 -c "$READER" "$S/mnt/b/big/shard.bin" >"$S/cpu.out"
  c1=$(cpu_seconds)
  echo "scale=3; ($c1 - $c0) / 2" | bc
}
log "cpu: warm reads, 3 workers"
cpu3=$(cpu_pass)
read -r secs3 _ <"$S/cpu.out"
down
log "cpu: warm reads, 1 worker"
up 1
"$SLUICE" load /b/big --wait >/dev/null
fuse_up
cpu1=$(cpu_pass)
read -r secs1 _ <"$S/cpu.out"
down
log "CPU s/GiB: 3 workers $cpu3, 1 worker $cpu1"

cat >"$OUT/cluster.json" <<JSON
{"latency_ms": $LATENCY_MS,
 "load": {"direct_files_per_second": $direct, "cluster_load_files_per_second": $load_rate,
          "store_bytes": $store_bytes, "dataset_bytes": $dataset, "store_gets": $store_gets},
 "stall": {"read_seconds": $stall_secs, "longest_wait_seconds": $stall_gap},
 "cpu": {"three_workers_cpu_s_per_gib": $cpu3, "one_worker_cpu_s_per_gib": $cpu1,
         "three_workers_read_seconds": $secs3, "one_worker_read_seconds": $secs1}}
JSON
cat >"$OUT/cluster.md" <<MD
| figure | sluice cluster | reference | ratio | goal |
|---|---|---|---|---|
| load 10,000 x 100 KiB, replicas 2 (files/s) | $load_rate | store's parallel GETs (64): $direct | $(echo "scale=2; $load_rate / $direct" | bc) | >= 0.8 |
| store bytes read by that load | $store_bytes | dataset: $dataset | $(echo "scale=3; $store_bytes / $dataset" | bc) | <= 1.02 |
| longest wait in a 2 GiB read, a worker SIGKILLed (s) | $stall_gap | | | <= 2 |
| CPU s per GiB of warm FUSE reads | 3 workers: $cpu3 | 1 worker: $cpu1 | $(echo "scale=2; $cpu3 / $cpu1" | bc) | <= 1.2 |

Proxy first-byte latency $LATENCY_MS ms; $cached
MD
cat "$OUT/cluster.md"
