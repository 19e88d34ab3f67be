#!/usr/bin/env bash
# run_metadata_bench.sh - listings and stats at scale: sluice against local disk, the store's
# own listing, s3fs and rclone, in one run. The page cache is dropped before every cold pass;
# each "cold" sluice pass starts a fresh `sluice local` (empty cache, empty metadata).
#   ls200k   `ls -l` of 200,000 files in one directory on file://: local disk cold and warm;
#            sluice cold, warm, and cold again after a restart (listings from its metadata
#            index on disk, not the store)
#   rgw50k   50,000 objects under one prefix in Ceph RGW (no proxy): a plain paginated
#            ListObjectsV2 (boto3, what the store itself takes; and `sluice ufs ls`, the same
#            in C++), then `ls -l` of the prefix through the mounts of sluice, s3fs and rclone
#            (each bounded at 600 s)
#   ns10m    10,000,000 empty files in 10,000 directories on file:// (generated once into
#            $META_DATA): `find` through the mount, then random stats of 1M names with 8
#            threads through the mount (warm; `sluice fuse` with client.metadata_memory=1GiB
#            answers names the kernel dropped from its listing pages) and 200k through the RPC
#            client, the worker's RSS with worker.metadata_memory=512MiB (the rest spills to
#            the index); then a
#            restart: seconds until a stat is served, and the stat rate right after.
# Writes bench/results/metadata.json and metadata.md.
#   SCENARIOS  which to run (default: ls200k rgw50k ns10m); the figures of the others are
#              kept from the previous results
#   META_DATA  where the generated trees are kept between runs (default /var/tmp/sluice-meta-data)
#   SCRATCH    scratch directory (default /var/tmp/sluice-meta-bench)
# About 25 minutes on a 2-core machine with the trees generated (generating 10M files: ~8 min).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target sluice sluice_python | grep -v '^\[' || true
B=$PWD/build/release
SLUICE=$B/src/cli/sluice
SCENARIOS=${SCENARIOS:-ls200k rgw50k ns10m}
wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }
DATA=${META_DATA:-/var/tmp/sluice-meta-data}
S=${SCRATCH:-/var/tmp/sluice-meta-bench}
OUT=$PWD/bench/results
mkdir -p "$OUT" "$DATA"
for m in "$S"/mnt-*; do umount "$m" 2>/dev/null || true; done
rm -rf "$S"; mkdir -p "$S"
PIDS=()
cleanup() {
  for m in "$S"/mnt-*; do umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash tests/fixtures/radosgw.sh stop "$S/rgw" >/dev/null 2>&1 || true
  rm -rf "$S"
}
trap cleanup EXIT
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
log() { echo "== $*" >&2; }
wait_mount() { for _ in $(seq 600); do grep -q " $1 " /proc/self/mountinfo && return 0; sleep 0.05; done; return 1; }
RESULTS="$S/results.jsonl"
: >"$RESULTS"
record() { echo "{\"scenario\": \"$1\", \"contender\": \"$2\", \"pass\": \"$3\", $4}" >>"$RESULTS"; echo "$1 $2 $3: $4" >&2; }
# Seconds a command takes (its output discarded); `timeout` bounds it, 0 on a timeout.
seconds() {
  local limit=$1
  shift
  local t0
  t0=$(date +%s.%N)
  if ! timeout "$limit" "$@" >/dev/null 2>&1; then echo 0; return; fi
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}'
}
# `ls -l DIR`, timed; also checks the entry count.
ls_l() { # limit dir want
  local t
  t=$(seconds "$1" ls -l "$2")
  local n
  n=$(ls -f "$2" | grep -vc '^\.\.\?$' || true)
  [[ $t != 0 && $n != "$3" ]] && { echo "ls of $2 found $n entries, not $3" >&2; exit 1; }
  echo "$t"
}
rss_mib() { awk '/VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }

# A fresh `sluice local` over $1 (more options after it), mounted at $S/mnt-sluice. `keep`
# as the first argument keeps the cache and metadata of the previous one (a restart).
SLUICE_PID=
sluice_start() {
  if [[ $1 == keep ]]; then shift; else rm -rf "$S/sluice"; fi
  mkdir -p "$S/sluice" "$S/mnt-sluice"
  export SLUICE_HOME=$S/sluice/home
  "$SLUICE" local --ufs "$@" --cache-dir "$S/sluice/cache" --cache-size 4GiB --memory-size 64MiB --rpc-port 0 \
    --http-port 0 --mountpoint "$S/mnt-sluice" >>"$S/sluice/log" 2>&1 &
  SLUICE_PID=$!
  wait_mount "$S/mnt-sluice" || { cat "$S/sluice/log" >&2; exit 1; }
}
sluice_stop() { kill "$SLUICE_PID"; wait "$SLUICE_PID" 2>/dev/null || true; }

if wants ls200k; then
  if [[ ! -e $DATA/d200k.done ]]; then
    log "generating 200,000 files"
    rm -rf "$DATA/d200k"
    /usr/bin/python3 bench/make_tree.py "$DATA/d200k" 1 200000
  fi
  D=$DATA/d200k/d00000
  log "ls -l of 200,000 files"
  drop
  record ls200k local-disk cold "\"seconds\": $(ls_l 300 "$D" 200000)"
  record ls200k local-disk warm "\"seconds\": $(ls_l 300 "$D" 200000)"
  sluice_start "file://$DATA/d200k"
  drop
  record ls200k sluice cold "\"seconds\": $(ls_l 300 "$S/mnt-sluice/d00000" 200000)"
  record ls200k sluice warm "\"seconds\": $(ls_l 300 "$S/mnt-sluice/d00000" 200000)"
  record ls200k sluice rss "\"mib\": $(rss_mib "$SLUICE_PID")"
  sluice_stop
  sluice_start keep "file://$DATA/d200k"
  drop
  record ls200k sluice restarted "\"seconds\": $(ls_l 300 "$S/mnt-sluice/d00000" 200000)"
  sluice_stop
fi

if wants rgw50k; then
  log "RGW with 50,000 objects under one prefix"
  PORT=$((20000 + RANDOM % 20000))
  eval "$(bash tests/fixtures/radosgw.sh start "$S/rgw" "$PORT" bench)"
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
  RGW=$AWS_ENDPOINT_URL
  unset AWS_ENDPOINT_URL
  if [[ ! -e $DATA/p50k.done ]]; then
    rm -rf "$DATA/p50k"
    /usr/bin/python3 bench/make_tree.py "$DATA/p50k" 1 50000
  fi
  "$SLUICE" ufs cp -R "$DATA/p50k/d00000" s3://bench/p50k -o "endpoint=$RGW" >/dev/null
  listing=$(env -u AWS_CA_BUNDLE /usr/bin/python3 - "$RGW" <<'PY'
import sys, time, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
started, n = time.monotonic(), 0
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="p50k/", Delimiter="/"):
    n += len(page.get("Contents", []))
print(f'"seconds": {time.monotonic() - started:.2f}, "objects": {n}')
PY
)
  record rgw50k list-objects-v2 cold "$listing"
  record rgw50k sluice-ufs-ls cold "\"seconds\": $(seconds 600 "$SLUICE" ufs ls s3://bench/p50k -o "endpoint=$RGW")"
  sluice_start s3://bench -o "endpoint=$RGW"
  drop
  record rgw50k sluice cold "\"seconds\": $(ls_l 600 "$S/mnt-sluice/p50k" 50000)"
  record rgw50k sluice warm "\"seconds\": $(ls_l 600 "$S/mnt-sluice/p50k" 50000)"
  sluice_stop
  echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" >"$S/s3fs.passwd"; chmod 600 "$S/s3fs.passwd"
  mkdir -p "$S/mnt-s3fs"
  s3fs bench "$S/mnt-s3fs" -o "url=$RGW,use_path_request_style,passwd_file=$S/s3fs.passwd,parallel_count=30,multireq_max=30"
  wait_mount "$S/mnt-s3fs"
  drop
  record rgw50k s3fs cold "\"seconds\": $(ls_l 600 "$S/mnt-s3fs/p50k" 50000)"
  umount "$S/mnt-s3fs"
  cat >"$S/rclone.conf" <<CONF
[s3]
type = s3
provider = Other
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY
endpoint = $RGW
force_path_style = true
CONF
  mkdir -p "$S/mnt-rclone"
  env -u AWS_CA_BUNDLE rclone --config "$S/rclone.conf" mount s3:bench "$S/mnt-rclone" --daemon
  wait_mount "$S/mnt-rclone"
  drop
  record rgw50k rclone cold "\"seconds\": $(ls_l 600 "$S/mnt-rclone/p50k" 50000)"
  umount "$S/mnt-rclone"
  bash tests/fixtures/radosgw.sh stop "$S/rgw" >/dev/null
fi

if wants ns10m; then
  if [[ ! -e $DATA/ns10m.done ]]; then
    log "generating 10,000,000 files in 10,000 directories (once)"
    rm -rf "$DATA/ns10m"
    /usr/bin/python3 bench/make_tree.py "$DATA/ns10m" 10000 1000
  fi
  log "10,000,000 files"
  cat >"$S/ns10m.yaml" <<CONF
worker:
  metadata_memory: 512MiB
client:
  metadata_memory: 1GiB
CONF
  # The worker alone (its RSS is the metadata's), and `sluice fuse` as a process of its own.
  ns_start() {  # [keep]
    [[ ${1:-} == keep ]] || rm -rf "$S/sluice"
    mkdir -p "$S/sluice" "$S/mnt-sluice"
    export SLUICE_HOME=$S/sluice/home
    "$SLUICE" local --ufs "file://$DATA/ns10m" -o metadata_ttl=1h --config "$S/ns10m.yaml" --cache-dir "$S/sluice/cache" \
      --cache-size 4GiB --memory-size 64MiB --rpc-port 0 --http-port 0 >>"$S/sluice/log" 2>&1 &
    SLUICE_PID=$!
    for _ in $(seq 600); do "$SLUICE" report >/dev/null 2>&1 && return 0; sleep 0.05; done
    cat "$S/sluice/log" >&2; exit 1
  }
  stat_rate() { PYTHONPATH=$B/python /usr/bin/python3 bench/stat_rate.py "$@" 10000 1000 | tail -1 | sed 's/^{//; s/}$//'; }
  ns_start
  "$SLUICE" fuse "$S/mnt-sluice" >>"$S/sluice/fuse.log" 2>&1 &
  FUSE_PID=$!
  wait_mount "$S/mnt-sluice"
  drop
  t=$(seconds 3600 find "$S/mnt-sluice")
  record ns10m sluice find "\"seconds\": $t, \"worker_rss_mib\": $(rss_mib "$SLUICE_PID"), \"fuse_rss_mib\": $(rss_mib "$FUSE_PID")"
  record ns10m sluice stat-mount "$(stat_rate mount "$S/mnt-sluice" 1000000 8), \"fuse_rss_mib\": $(rss_mib "$FUSE_PID")"
  record ns10m sluice stat-client "$(stat_rate client "" 200000 8), \"worker_rss_mib\": $(rss_mib "$SLUICE_PID")"
  "$SLUICE" report | sed -n '/^under-store traffic:/,$p' >&2
  umount "$S/mnt-sluice"
  wait "$FUSE_PID" 2>/dev/null || true
  sluice_stop
  t0=$(date +%s.%N)
  ns_start keep
  PYTHONPATH=$B/python /usr/bin/python3 -c "
import sluice, time
c = sluice.connect()
c.stat('/d04321/f0123.jpg')"
  record ns10m sluice restart "\"seconds_to_first_stat\": $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')"
  record ns10m sluice stat-client-restarted "$(stat_rate client "" 200000 8), \"worker_rss_mib\": $(rss_mib "$SLUICE_PID")"
  "$SLUICE" report | sed -n '/^under-store traffic:/,$p' >&2
  sluice_stop
fi

/usr/bin/python3 - "$RESULTS" "$OUT" "$SCENARIOS" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out, ran = sys.argv[2], sys.argv[3].split()
kept = []
if os.path.exists(f"{out}/metadata.json"):
    kept = [r for r in json.load(open(f"{out}/metadata.json")) if r["scenario"] not in ran]
order = ["ls200k", "rgw50k", "ns10m"]
rows = sorted(kept + rows, key=lambda r: order.index(r["scenario"]) if r["scenario"] in order else len(order))
json.dump(rows, open(f"{out}/metadata.json", "w"), indent=1)
def get(scenario, contender, pass_, key):
    for r in rows:
        if (r["scenario"], r["contender"], r["pass"]) == (scenario, contender, pass_) and key in r:
            return r[key]
    return None
lines = ["# Metadata at scale", "", "`bash bench/run_metadata_bench.sh` (page cache dropped before each cold pass); each scenario's "
         "figures come from one run of it" + (f" (this run: {', '.join(ran)})" if kept else "") + ".", "",
         "| scenario | contender | pass | figures |", "|---|---|---|---|"]
for r in rows:
    figures = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("scenario", "contender", "pass"))
    lines.append(f'| {r["scenario"]} | {r["contender"]} | {r["pass"]} | {figures} |')
lines += ["", "| target | this run | goal | met |", "|---|---|---|---|"]
def ratio(a, b):
    return a / b if a and b else None
def target(name, value, goal, ok, fmt="{:.2f}x"):
    lines.append(f"| {name} | {fmt.format(value) if value is not None else 'n/a'} | {goal} | "
                 f"{'yes' if value is not None and ok(value) else '**no**'} |")
target("ls -l 200k cold vs local disk cold", ratio(get("ls200k", "sluice", "cold", "seconds"),
       get("ls200k", "local-disk", "cold", "seconds")), "<= 3x", lambda v: v <= 3)
target("ls -l 200k warm vs local disk warm", ratio(get("ls200k", "sluice", "warm", "seconds"),
       get("ls200k", "local-disk", "warm", "seconds")), "<= 1.5x", lambda v: v <= 1.5)
target("RGW 50k cold ls -l vs ListObjectsV2 (boto3)", ratio(get("rgw50k", "sluice", "cold", "seconds"),
       get("rgw50k", "list-objects-v2", "cold", "seconds")), "<= 1.2x", lambda v: v <= 1.2)
target("RGW 50k cold ls -l vs ListObjectsV2 (sluice ufs ls)", ratio(get("rgw50k", "sluice", "cold", "seconds"),
       get("rgw50k", "sluice-ufs-ls", "cold", "seconds")), "<= 1.2x", lambda v: v <= 1.2)
for other in ("s3fs", "rclone"):
    t = get("rgw50k", other, "cold", "seconds")
    mine = get("rgw50k", "sluice", "cold", "seconds")
    target(f"RGW 50k cold ls -l: {other} / sluice", ratio(t, mine) if t else None,
           ">= 10x (s3fs/rclone time over sluice's; n/a: over 600 s)", lambda v: v >= 10)
target("10M: random stats through the mount, 8 threads", get("ns10m", "sluice", "stat-mount", "stats_per_second"),
       ">= 50,000/s", lambda v: v >= 50000, "{:,}/s")
target("10M: worker RSS with metadata_memory 512MiB", get("ns10m", "sluice", "stat-client", "worker_rss_mib"),
       "<= 2 GB", lambda v: v <= 2048, "{} MiB")
target("10M: restart until stats are served", get("ns10m", "sluice", "restart", "seconds_to_first_stat"),
       "<= 10 s", lambda v: v <= 10, "{:.1f} s")
open(f"{out}/metadata.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
