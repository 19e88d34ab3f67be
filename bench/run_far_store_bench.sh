#!/usr/bin/env bash
# run_far_store_bench.sh - cold reads through sluice against reading a far store directly, in
# one run. Every store sits behind tests/fixtures/fault_proxy with 20 ms of first-byte latency
# (what real S3 answers; loopback hides round trips), and every "direct" contender is a
# parallel GET reader (`sluice ufs read`, no cache) of the same concurrency (16), through the
# same proxy. Page cache dropped before every pass; each sluice pass starts a fresh
# `sluice local` (empty cache, empty metadata). Scenarios:
#   small-by-name      1,000 x 100 KiB in one directory, read by name from a shuffled manifest
#                      (nothing lists the directory), 16 threads, through the FUSE mount
#   small-listed       the same after listing the directory (the reader lists and stats it)
#   small-with-load    by name, with `sluice load` of the directory started alongside
#   http-by-name       the same files on `python3 -m http.server` (no ETags, no Range), by name
#   seq-256MiB         one 256 MiB file read sequentially (direct: 16 parallel ranged GETs)
#   ttfb               time to first byte of a cold file opened by name, one at a time (100
#                      files; direct: the mean time of one GET per file, one at a time)
#   ceiling            what the store itself serves: direct GETs by name with 64 threads
#   s3fs, rclone       the by-name pass through their FUSE mounts, same proxy
# Each pass records the store requests the proxy saw (GET, HEAD, LIST).
# Writes bench/results/far_store.json and far_store.md.
#   REPEAT       passes of each (the tables show the median; default 3)
#   LATENCY_MS   the proxy's first-byte latency (default 20)
#   SCENARIOS    which to run (default: all)
#   SCRATCH      scratch directory (default /var/tmp/sluice-far-bench)
# About 6 minutes on a 2-core machine at the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target sluice dlio_bench fault_proxy | grep -v '^\[' || true
B=$PWD/build/release
SLUICE=$B/src/cli/sluice
DLIO=$B/bench/dlio_bench
PROXY=$B/tests/support/fault_proxy
REPEAT=${REPEAT:-3}
LATENCY_MS=${LATENCY_MS:-20}
SCENARIOS=${SCENARIOS:-small-by-name small-listed small-with-load http-by-name seq-256MiB ttfb ceiling s3fs rclone}
wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }
S=${SCRATCH:-/var/tmp/sluice-far-bench}
OUT=$PWD/bench/results
mkdir -p "$OUT"
for m in "$S"/mnt-*; do umount "$m" 2>/dev/null || true; done
rm -rf "$S"; mkdir -p "$S/data"
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
wait_mount() { for _ in $(seq 400); do grep -q " $1 " /proc/self/mountinfo && return 0; sleep 0.05; done; return 1; }
wait_file() { for _ in $(seq 400); do [[ -s $1 ]] && return 0; sleep 0.05; done; return 1; }

log "dataset"
/usr/bin/python3 - "$S/data" "$S/manifest" <<'PY'
import os, random, sys
root, manifest = sys.argv[1], sys.argv[2]
rng = random.Random(1)
os.makedirs(f"{root}/small"); os.makedirs(f"{root}/big")
names = []
for i in range(1000):
    names.append(f"img_{i:06d}.jpg")
    with open(f"{root}/small/{names[-1]}", "wb") as f: f.write(rng.randbytes(100 * 1024))
with open(f"{root}/big/file.bin", "wb") as f:
    for _ in range(256): f.write(rng.randbytes(1 << 20))
rng.shuffle(names)
open(manifest, "w").write("".join(n + "\n" for n in names))
open(manifest + "-100", "w").write("".join(n + "\n" for n in names[:100]))
PY
PORT=$((20000 + RANDOM % 20000))
eval "$(bash tests/fixtures/radosgw.sh start "$S/rgw" "$PORT" bench)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
RGW=$AWS_ENDPOINT_URL
unset AWS_ENDPOINT_URL
"$SLUICE" ufs cp -R "$S/data" s3://bench -o "endpoint=$RGW" >/dev/null

# The proxies: one in front of RGW, one in front of python's http.server.
start_proxy() {  # upstream port-file
  "$PROXY" "$1" --port-file "$2" >/dev/null 2>&1 &
  PIDS+=($!)
  wait_file "$2"
}
start_proxy "$RGW" "$S/proxy-s3.port"
S3_PROXY=http://127.0.0.1:$(cat "$S/proxy-s3.port")
HTTP_PORT=$((PORT + 1))
/usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$S/data" "$HTTP_PORT" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$HTTP_PORT/" >/dev/null && break; sleep 0.05; done
start_proxy "http://127.0.0.1:$HTTP_PORT" "$S/proxy-http.port"
HTTP_PROXY_URL=http://127.0.0.1:$(cat "$S/proxy-http.port")
for p in "$S3_PROXY" "$HTTP_PROXY_URL"; do curl -fs "$p/__proxy__/set?latency_ms=$LATENCY_MS" >/dev/null; done

RESULTS="$S/results.jsonl"
: >"$RESULTS"
# Runs a pass: $1 contender, $2 scenario, $3 proxy URL, then the command. The pass's figures
# (its last output line, as JSON) get the proxy's request counts added.
pass() {
  local who=$1 name=$2 proxy=$3
  shift 3
  curl -fs "$proxy/__proxy__/reset-stats" >/dev/null
  drop
  local out
  out=$("$@" | tail -1)
  local counts
  counts=$(curl -fs "$proxy/__proxy__/stats" | awk '$1 ~ /^(GET|HEAD|LIST)$/ {printf "\"%s\": %s, ", $1, $2}')
  out="{${counts}${out#\{}"
  echo "{\"contender\": \"$who\", \"scenario\": \"$name\", \"result\": $out}" >>"$RESULTS"
  echo "$who $name: $out" >&2
}
# Direct parallel GETs, no cache: `sluice ufs read -j ${J:-16} ARGS...`, its summary as JSON.
direct() {
  "$SLUICE" ufs read -j "${J:-16}" "$@" |
    sed -E 's/.*: ([0-9.]+) MiB\/s, ([0-9]+) files\/s.*/{"files_per_second": \2, "mib_per_second": \1}/'
}

# A fresh `sluice local` over $1 (more options after it), mounted at $S/mnt-sluice.
SLUICE_PID=
sluice_start() {
  rm -rf "$S/sluice"; mkdir -p "$S/sluice" "$S/mnt-sluice"
  export SLUICE_HOME=$S/sluice/home
  "$SLUICE" local --ufs "$@" --cache-dir "$S/sluice/cache" --cache-size 4GiB --memory-size 512MiB --rpc-port 0 \
    --http-port 0 --mountpoint "$S/mnt-sluice" >"$S/sluice/log" 2>&1 &
  SLUICE_PID=$!
  wait_mount "$S/mnt-sluice" || { cat "$S/sluice/log" >&2; exit 1; }
  # A started worker reserves its memory tier in the background (RSS reaches the quota); a
  # training job starts after that, and so does the pass (untimed, at most 20 s).
  for _ in $(seq 400); do
    (($(awk '/VmRSS/ {print $2}' "/proc/$SLUICE_PID/status") > 480 * 1024)) && break
    sleep 0.05
  done
}
sluice_stop() { kill "$SLUICE_PID"; wait "$SLUICE_PID" 2>/dev/null || true; }
s3_sluice() { sluice_start s3://bench -o "endpoint=$S3_PROXY"; }
# One GET per file, one file at a time: the mean is a direct reader's time to first byte.
direct_ttfb() {
  "$SLUICE" ufs read -j 1 --manifest "$S/manifest-100" s3://bench/small -o "endpoint=$S3_PROXY" |
    sed -E 's/.*: ([0-9.]+) MiB\/s, ([0-9]+) files\/s.*/\2/' | awk '{printf "{\"mean_ms\": %.1f}\n", 1000 / $1}'
}
by_name() { "$DLIO" small "$1" --jobs 16 --manifest "$S/manifest"; }
listed() { "$DLIO" small "$1" --jobs 16; }
with_load() { "$SLUICE" load /small >/dev/null; by_name "$1"; }

for _ in $(seq "$REPEAT"); do
  if wants small-by-name || wants small-listed || wants small-with-load; then
    log "small files, direct"
    pass direct small-by-name "$S3_PROXY" direct --manifest "$S/manifest" s3://bench/small -o "endpoint=$S3_PROXY"
  fi
  for scenario in small-by-name small-listed small-with-load; do
    wants $scenario || continue
    log "$scenario, sluice"
    s3_sluice
    case $scenario in
      small-by-name) pass sluice $scenario "$S3_PROXY" by_name "$S/mnt-sluice/small" ;;
      small-listed) pass sluice $scenario "$S3_PROXY" listed "$S/mnt-sluice/small" ;;
      small-with-load) pass sluice $scenario "$S3_PROXY" with_load "$S/mnt-sluice/small" ;;
    esac
    sluice_stop
  done
  if wants http-by-name; then
    log "http store"
    pass direct http-by-name "$HTTP_PROXY_URL" direct --manifest "$S/manifest" "$HTTP_PROXY_URL/small"
    sluice_start "$HTTP_PROXY_URL"
    pass sluice http-by-name "$HTTP_PROXY_URL" by_name "$S/mnt-sluice/small"
    sluice_stop
  fi
  if wants seq-256MiB; then
    log "256 MiB sequential"
    pass direct seq-256MiB "$S3_PROXY" direct s3://bench/big -o "endpoint=$S3_PROXY"
    s3_sluice
    pass sluice seq-256MiB "$S3_PROXY" "$DLIO" seq "$S/mnt-sluice/big/file.bin" --jobs 1
    sluice_stop
  fi
  if wants ttfb; then
    log "time to first byte"
    pass direct ttfb "$S3_PROXY" direct_ttfb
    s3_sluice
    pass sluice ttfb "$S3_PROXY" "$DLIO" ttfb "$S/mnt-sluice/small" --manifest "$S/manifest-100"
    sluice_stop
  fi
  if wants ceiling; then
    log "the store's ceiling"
    J=64 pass direct-64 ceiling "$S3_PROXY" direct --manifest "$S/manifest" s3://bench/small -o "endpoint=$S3_PROXY"
  fi
  if wants s3fs; then
    log "s3fs"
    echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" >"$S/s3fs.passwd"; chmod 600 "$S/s3fs.passwd"
    rm -rf "$S/s3fs-cache"; mkdir -p "$S/mnt-s3fs" "$S/s3fs-cache"
    s3fs bench "$S/mnt-s3fs" -o "url=$S3_PROXY,use_path_request_style,passwd_file=$S/s3fs.passwd" \
      -o "use_cache=$S/s3fs-cache,parallel_count=30,multireq_max=30"
    wait_mount "$S/mnt-s3fs"
    pass s3fs small-by-name "$S3_PROXY" by_name "$S/mnt-s3fs/small"
    umount "$S/mnt-s3fs"
  fi
  if wants rclone; then
    log "rclone"
    cat >"$S/rclone.conf" <<CONF
[s3]
type = s3
provider = Other
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY
endpoint = $S3_PROXY
force_path_style = true
CONF
    rm -rf "$S/rclone-cache"; mkdir -p "$S/mnt-rclone"
    env -u AWS_CA_BUNDLE rclone --config "$S/rclone.conf" mount s3:bench "$S/mnt-rclone" --vfs-cache-mode full \
      --vfs-cache-max-size 4G --cache-dir "$S/rclone-cache" --daemon
    wait_mount "$S/mnt-rclone"
    pass rclone small-by-name "$S3_PROXY" by_name "$S/mnt-rclone/small"
    umount "$S/mnt-rclone"
  fi
done

/usr/bin/python3 - "$RESULTS" "$OUT" "$LATENCY_MS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out, latency = sys.argv[2], sys.argv[3]
json.dump(rows, open(f"{out}/far_store.json", "w"), indent=1)
def runs(who, scenario):
    return [r["result"] for r in rows if r["contender"] == who and r["scenario"] == scenario]
def median(who, scenario, key):
    xs = [r[key] for r in runs(who, scenario) if key in r]
    return statistics.median(xs) if xs else None
def counts(who, scenario):
    r = runs(who, scenario)
    if not r: return ""
    m = r[len(r) // 2]
    return f'{m.get("GET", 0)} / {m.get("HEAD", 0)} / {m.get("LIST", 0)}'
lines = [f"# Far store: cold reads behind {latency} ms of first-byte latency", "",
         "Medians of the passes of `bash bench/run_far_store_bench.sh`; requests are one pass's GET / HEAD / LIST.", "",
         "| scenario | contender | files/s | MiB/s | ms to first byte | requests (GET / HEAD / LIST) |",
         "|---|---|---|---|---|---|"]
order = [("small-by-name", ("direct", "sluice", "s3fs", "rclone")), ("small-listed", ("sluice",)),
         ("small-with-load", ("sluice",)), ("ceiling", ("direct-64",)), ("http-by-name", ("direct", "sluice")),
         ("seq-256MiB", ("direct", "sluice")), ("ttfb", ("direct", "sluice"))]
def cell(x, digits=0):
    return "" if x is None else (round(x) if digits == 0 else round(x, digits))
for scenario, whos in order:
    for who in whos:
        f, m = median(who, scenario, "files_per_second"), median(who, scenario, "mib_per_second")
        t = median(who, scenario, "p50_ms") or median(who, scenario, "mean_ms")
        if f is None and m is None and t is None: continue
        if scenario == "ttfb": f = m = None
        lines.append(f"| {scenario} | {who} | {cell(f)} | {cell(m, 1)} | {cell(t, 1)} | {counts(who, scenario)} |")
def ratio(a, b, target, what):
    if a is None or b is None or b == 0: return
    lines.append(f"| {what} | {a / b:.2f}x | {target}x | {'yes' if a / b >= target else '**no**'} |")
direct_small = median("direct", "small-by-name", "files_per_second")
lines += ["", "| target | this run | goal | met |", "|---|---|---|---|"]
ratio(median("sluice", "small-by-name", "files_per_second"), direct_small, 0.9, "cold by name vs direct GETs")
ratio(median("sluice", "small-listed", "files_per_second"), direct_small, 0.9, "cold after listing vs direct GETs")
ratio(median("sluice", "small-with-load", "files_per_second"), direct_small, 1.5, "cold by name with `sluice load` vs direct")
ratio(median("sluice", "http-by-name", "files_per_second"), median("direct", "http-by-name", "files_per_second"), 0.9,
      "http:// store by name vs direct GETs")
ratio(median("sluice", "seq-256MiB", "mib_per_second"), median("direct", "seq-256MiB", "mib_per_second"), 0.9,
      "cold 256 MiB vs direct parallel ranged GETs")
ttfb_sluice, ttfb_direct = median("sluice", "ttfb", "p50_ms"), median("direct", "ttfb", "mean_ms")
if ttfb_sluice is not None and ttfb_direct is not None:
    lines.append(f"| time to first byte, cold, by name: sluice p50 vs a direct GET | {ttfb_sluice:.1f} vs "
                 f"{ttfb_direct:.1f} ms | one round trip + < 1 ms | {'yes' if ttfb_sluice <= ttfb_direct + 1 else '**no**'} |")
for other in ("s3fs", "rclone"):
    ratio(median("sluice", "small-with-load", "files_per_second"), median(other, "small-by-name", "files_per_second"), 3,
          f"with load vs {other} by name")
open(f"{out}/far_store.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
