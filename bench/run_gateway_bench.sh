#!/usr/bin/env bash
# run_gateway_bench.sh - the S3 gateway against the FUSE mount of the same `sluice local` and
# against the RGW it caches, warm, in one run. Scenarios:
#   big-256MiB   one 256 MiB object: `curl` (SigV4) from the gateway vs `cat` through the mount
#   small-100KiB 1,000 x 100 KiB objects read 10 times over in a shuffled order by 8 keep-alive
#                readers: from the gateway and from RGW itself (`sluice ufs read -j 8 --manifest`,
#                keep-alive GETs; files/s and the latency of one GET, median and p99), and
#                through the mount (bench/dlio_bench small, 8 threads, the same manifest)
# Every pass is warm for sluice (its cache holds the data; the kernel's page cache is dropped).
# Writes bench/results/gateway.json and gateway.md.
#   REPEAT   passes of each (the tables show the median; default 3)
#   SCRATCH  scratch directory (default /var/tmp/sluice-gateway-bench)
# About 3 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target sluice dlio_bench | grep -v '^\[' || true
SLUICE=$PWD/build/release/src/cli/sluice
DLIO=$PWD/build/release/bench/dlio_bench
REPEAT=${REPEAT:-3}
S=${SCRATCH:-/var/tmp/sluice-gateway-bench}
OUT=$PWD/bench/results
mkdir -p "$OUT"
umount "$S/mnt" 2>/dev/null || true
rm -rf "$S"; mkdir -p "$S/data" "$S/mnt"
SLUICE_PID=
cleanup() {
  umount "$S/mnt" 2>/dev/null || fusermount3 -u "$S/mnt" 2>/dev/null || true
  [[ -n $SLUICE_PID ]] && kill "$SLUICE_PID" 2>/dev/null && wait "$SLUICE_PID" 2>/dev/null || true
  bash tests/fixtures/radosgw.sh stop "$S/rgw" >/dev/null 2>&1 || true
  rm -rf "$S"
}
trap cleanup EXIT
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
log() { echo "== $*" >&2; }

log "dataset"
/usr/bin/python3 - "$S/data" "$S/manifest" <<'PY'
import os, random, sys
root, manifest = sys.argv[1], sys.argv[2]
rng = random.Random(1)
os.makedirs(f"{root}/small"); os.makedirs(f"{root}/big")
names = [f"img_{i:06d}.jpg" for i in range(1000)]
for n in names:
    with open(f"{root}/small/{n}", "wb") as f: f.write(rng.randbytes(100 * 1024))
with open(f"{root}/big/file.bin", "wb") as f:
    for _ in range(256): f.write(rng.randbytes(1 << 20))
order = names * 10
rng.shuffle(order)
open(manifest, "w").write("".join(n + "\n" for n in order))
PY
PORT=$((20000 + RANDOM % 20000))
eval "$(bash tests/fixtures/radosgw.sh start "$S/rgw" "$PORT" bench)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
RGW=$AWS_ENDPOINT_URL
unset AWS_ENDPOINT_URL
"$SLUICE" ufs cp -R "$S/data" s3://bench -o "endpoint=$RGW" >/dev/null

log "sluice local with the gateway and the mount"
export SLUICE_HOME=$S/home SLUICE_GATEWAY_ACCESS_KEY=BENCHGATEWAYKEY SLUICE_GATEWAY_SECRET_KEY=bench-gateway-secret
"$SLUICE" local --ufs s3://bench -o "endpoint=$RGW" --cache-dir "$S/cache" --cache-size 4GiB --memory-size 1GiB \
  --rpc-port 0 --http-port 0 --s3-port 0 --mountpoint "$S/mnt" >"$S/local.log" 2>&1 &
SLUICE_PID=$!
for _ in $(seq 400); do grep -q " $S/mnt " /proc/self/mountinfo && break; sleep 0.05; done
GATEWAY=$(grep -o 'S3 gateway http://[0-9.:]*' "$S/local.log" | cut -d' ' -f3)
[[ -n $GATEWAY ]] || { cat "$S/local.log" >&2; exit 1; }
echo "$SLUICE_GATEWAY_SECRET_KEY" >"$S/gateway-secret"
"$SLUICE" load /small --wait >/dev/null
"$SLUICE" load /big --wait >/dev/null

RESULTS="$S/results.jsonl"
: >"$RESULTS"
record() {  # contender scenario json
  echo "{\"contender\": \"$1\", \"scenario\": \"$2\", \"result\": $3}" >>"$RESULTS"
  echo "$1 $2: $3" >&2
}
# `sluice ufs read` with 8 readers over the shuffled manifest, its summary line as JSON.
readers() {
  "$SLUICE" ufs read -j 8 --manifest "$S/manifest" "$@" | sed -E \
    's/.*: ([0-9.]+) MiB\/s, ([0-9]+) files\/s; a read took ([0-9.]+) ms \(median\), ([0-9.]+) ms \(p99\).*/{"files_per_second": \2, "mib_per_second": \1, "p50_ms": \3, "p99_ms": \4}/'
}
mib_per_second() {  # seconds bytes
  awk -v s="$1" -v b="$2" 'BEGIN {printf "{\"mib_per_second\": %.1f}", b / 1048576 / s}'
}
for _ in $(seq "$REPEAT"); do
  log "256 MiB: gateway (curl) and mount (cat)"
  drop
  bytes_per_s=$(curl -fsS -o /dev/null -w '%{speed_download}' --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$SLUICE_GATEWAY_ACCESS_KEY:$SLUICE_GATEWAY_SECRET_KEY" "$GATEWAY/sluice/big/file.bin")
  record gateway big-256MiB "$(awk -v b="$bytes_per_s" 'BEGIN {printf "{\"mib_per_second\": %.1f}", b / 1048576}')"
  drop
  t0=$(date +%s.%N); cat "$S/mnt/big/file.bin" >/dev/null; t1=$(date +%s.%N)
  record fuse big-256MiB "$(mib_per_second "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')" $((256 << 20)))"

  log "100 KiB x 8 readers: gateway, RGW, mount"
  drop
  record gateway small-100KiB "$(readers s3://sluice/small -o "endpoint=$GATEWAY" \
    -o "access_key=$SLUICE_GATEWAY_ACCESS_KEY" -o "secret_key_file=$S/gateway-secret")"
  drop
  record rgw small-100KiB "$(readers s3://bench/small -o "endpoint=$RGW")"
  drop
  record fuse small-100KiB "$("$DLIO" small "$S/mnt/small" --jobs 8 --manifest "$S/manifest" | tail -1)"
done

/usr/bin/python3 - "$RESULTS" "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out = sys.argv[2]
json.dump(rows, open(f"{out}/gateway.json", "w"), indent=1)
def med(who, scenario, key):
    xs = [r["result"][key] for r in rows if r["contender"] == who and r["scenario"] == scenario and key in r["result"]]
    return statistics.median(xs) if xs else None
lines = ["# S3 gateway, warm: against the FUSE mount of the same sluice and the RGW it caches", "",
         "Medians of the passes of `bash bench/run_gateway_bench.sh`.", "",
         "| scenario | contender | MiB/s | files/s | GET median ms | GET p99 ms |", "|---|---|---|---|---|---|"]
for scenario, who in [("big-256MiB", "gateway"), ("big-256MiB", "fuse"), ("small-100KiB", "gateway"),
                      ("small-100KiB", "rgw"), ("small-100KiB", "fuse")]:
    cells = [med(who, scenario, k) for k in ("mib_per_second", "files_per_second", "p50_ms", "p99_ms")]
    lines.append(f"| {scenario} | {who} | " + " | ".join("" if c is None else f"{c:g}" for c in cells) + " |")
def ratio(a, b, goal, what):
    r = a / b if a and b else 0
    return f"| {what} | {r:.2f}x | {goal}x | {'yes' if r >= goal else '**no**'} |"
p99 = med("gateway", "small-100KiB", "p99_ms")
lines += ["", "| target | this run | goal | met |", "|---|---|---|---|",
          ratio(med("gateway", "big-256MiB", "mib_per_second"), med("fuse", "big-256MiB", "mib_per_second"), 0.8,
                "warm 256 MiB GET (curl) vs the mount's warm read"),
          ratio(med("gateway", "small-100KiB", "files_per_second"), med("rgw", "small-100KiB", "files_per_second"), 5,
                "warm 100 KiB GETs, 8 clients, vs the same GETs against RGW"),
          ratio(med("gateway", "small-100KiB", "files_per_second"), med("fuse", "small-100KiB", "files_per_second"), 0.5,
                "warm 100 KiB GETs vs the mount's files/s"),
          f"| p99 of a warm 100 KiB GET under that load | {p99} ms | <= 5 ms | {'yes' if p99 is not None and p99 <= 5 else '**no**'} |"]
open(f"{out}/gateway.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
