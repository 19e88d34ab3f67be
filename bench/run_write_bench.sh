#!/usr/bin/env bash
# run_write_bench.sh - the write path (`through` mode) against the tools that write to S3, in
# one run, all against the same RGW:
#   checkpoint   a SIZE checkpoint written with 1 MiB writes (dd bs=1M, as torch.save writes)
#                through sluice's mount, with `aws s3 cp`, through s3fs and through rclone
#                (--vfs-cache-mode writes); each timed until the object is in the store
#   async        the same through a write-back mount of the same sluice: time to close()
#                against dd to the local disk (plain, and with conv=fsync), then the upload
#   restore      the checkpoint read back right after through sluice's mount (page cache
#                dropped), against a warm read of the same bytes cached by `sluice load`
#   handoff      stage 1 writes FILES x 100 KiB through the mount; stage 2 reads them all (8
#                readers): files/s and bytes read from the store, against a second (warm) pass
# Writes bench/results/write.json and write.md.
#   SIZE     checkpoint size in MiB (default 1024; the issue's figure is for 4096)
#   FILES    hand-off files (default 2000)
#   SCRATCH  scratch directory (default /var/tmp/sluice-write-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target sluice dlio_bench | grep -v '^\[' || true
SLUICE=$PWD/build/release/src/cli/sluice
DLIO=$PWD/build/release/bench/dlio_bench
SIZE=${SIZE:-1024}
FILES=${FILES:-2000}
S=${SCRATCH:-/var/tmp/sluice-write-bench}
OUT=$PWD/bench/results
mkdir -p "$OUT"
for m in "$S/mnt" "$S/mnt-s3fs" "$S/mnt-rclone"; do umount "$m" 2>/dev/null || true; done
rm -rf "$S"; mkdir -p "$S/mnt" "$S/mnt-s3fs" "$S/mnt-rclone"
SLUICE_PID=
cleanup() {
  for m in "$S/mnt" "$S/mnt-s3fs" "$S/mnt-rclone"; do umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null || true; done
  [[ -n $SLUICE_PID ]] && kill "$SLUICE_PID" 2>/dev/null && wait "$SLUICE_PID" 2>/dev/null || true
  bash tests/fixtures/radosgw.sh stop "$S/rgw" >/dev/null 2>&1 || true
  rm -rf "$S"
}
trap cleanup EXIT
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
log() { echo "== $*" >&2; }
wait_mount() { for _ in $(seq 400); do grep -q " $1 " /proc/self/mountinfo && return 0; sleep 0.05; done; return 1; }
now() { date +%s.%N; }
mibs() { awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN {printf "%.1f", m / (b - a)}'; }
RESULTS="$S/results.jsonl"
: >"$RESULTS"
record() {  # contender scenario json
  echo "{\"contender\": \"$1\", \"scenario\": \"$2\", \"result\": $3}" >>"$RESULTS"
  echo "$1 $2: $3" >&2
}

log "checkpoint of $SIZE MiB"
head -c $((SIZE << 20)) /dev/urandom >"$S/ckpt.bin"
PORT=$((20000 + RANDOM % 20000))
eval "$(bash tests/fixtures/radosgw.sh start "$S/rgw" "$PORT" bench)"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
RGW=$AWS_ENDPOINT_URL
unset AWS_ENDPOINT_URL


log "sluice local over s3://bench, writes through"
export SLUICE_HOME=$S/home
"$SLUICE" local --ufs s3://bench -o "endpoint=$RGW" -o write_mode=through --cache-dir "$S/cache" \
  --cache-size $((SIZE * 3 + 2048))MiB --memory-size 1GiB --rpc-port 0 --http-port 0 --mountpoint "$S/mnt" \
  >"$S/local.log" 2>&1 &
SLUICE_PID=$!
wait_mount "$S/mnt" || { cat "$S/local.log" >&2; exit 1; }
mkdir -p "$S/mnt/ckpt"
ufs_bytes_read() { "$SLUICE" report | awk '$1 == "/" && /requests,/ {for (i = 1; i <= NF; i++) if ($(i+1) == "read,") print $(i-1) $i}'; }

drop
t0=$(now); env -u AWS_CA_BUNDLE /usr/bin/aws --endpoint-url "$RGW" s3 cp --quiet "$S/ckpt.bin" s3://bench/ckpt/aws.bin; t1=$(now)
record aws-s3-cp checkpoint "{\"mib_per_second\": $(mibs "$t0" "$t1" "$SIZE")}"

drop
t0=$(now); dd if="$S/ckpt.bin" of="$S/mnt/ckpt/sluice.bin" bs=1M status=none; t1=$(now)
record sluice checkpoint "{\"mib_per_second\": $(mibs "$t0" "$t1" "$SIZE")}"
cmp "$S/ckpt.bin" "$S/mnt/ckpt/sluice.bin"

log "write-back (async) mount and the local disk"
"$SLUICE" mount add /async s3://bench/async -o "endpoint=$RGW" --write-mode async >/dev/null
mkdir -p "$S/mnt/async"
drop
t0=$(now); dd if="$S/ckpt.bin" of="$S/local-copy.bin" bs=1M status=none; t1=$(now)
record local-disk async "{\"mib_per_second\": $(mibs "$t0" "$t1" "$SIZE")}"
rm -f "$S/local-copy.bin"; drop
t0=$(now); dd if="$S/ckpt.bin" of="$S/local-copy.bin" bs=1M conv=fsync status=none; t1=$(now)
record local-disk-fsync async "{\"mib_per_second\": $(mibs "$t0" "$t1" "$SIZE")}"
rm -f "$S/local-copy.bin"; drop
t0=$(now); dd if="$S/ckpt.bin" of="$S/mnt/async/ckpt.bin" bs=1M status=none; t1=$(now)
"$SLUICE" fs flush /async; t2=$(now)
record sluice async "{\"mib_per_second\": $(mibs "$t0" "$t1" "$SIZE"), \"upload_mib_per_second\": $(mibs "$t1" "$t2" "$SIZE")}"
cmp "$S/ckpt.bin" "$S/mnt/async/ckpt.bin"

log "s3fs and rclone"
echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" >"$S/s3fs.passwd"; chmod 600 "$S/s3fs.passwd"
s3fs bench "$S/mnt-s3fs" -o "url=$RGW,use_path_request_style,passwd_file=$S/s3fs.passwd,parallel_count=8"
wait_mount "$S/mnt-s3fs"
drop
t0=$(now); dd if="$S/ckpt.bin" of="$S/mnt-s3fs/ckpt/s3fs.bin" bs=1M status=none; t1=$(now)
record s3fs checkpoint "{\"mib_per_second\": $(mibs "$t0" "$t1" "$SIZE")}"
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
env -u AWS_CA_BUNDLE rclone --config "$S/rclone.conf" mount s3:bench "$S/mnt-rclone" --vfs-cache-mode writes \
  --cache-dir "$S/rclone-cache" --daemon
wait_mount "$S/mnt-rclone"
drop
# rclone's close returns before the upload ends (it uploads from its cache after); the clock
# stops when the object is in the store, as for the others.
t0=$(now); dd if="$S/ckpt.bin" of="$S/mnt-rclone/ckpt/rclone.bin" bs=1M status=none
until "$SLUICE" ufs stat s3://bench/ckpt/rclone.bin -o "endpoint=$RGW" 2>/dev/null | grep -q "$((SIZE << 20))"; do sleep 0.05; done
t1=$(now)
record rclone checkpoint "{\"mib_per_second\": $(mibs "$t0" "$t1" "$SIZE")}"
umount "$S/mnt-rclone"

log "restore"
before=$(ufs_bytes_read)
drop
t0=$(now); cat "$S/mnt/ckpt/sluice.bin" >/dev/null; t1=$(now)
record sluice restore "{\"mib_per_second\": $(mibs "$t0" "$t1" "$SIZE"), \"ufs_read_before\": \"$before\", \"ufs_read_after\": \"$(ufs_bytes_read)\"}"
"$SLUICE" load /ckpt/aws.bin --wait >/dev/null
drop
t0=$(now); cat "$S/mnt/ckpt/aws.bin" >/dev/null; t1=$(now)
record warm-read restore "{\"mib_per_second\": $(mibs "$t0" "$t1" "$SIZE")}"

log "hand-off: $FILES x 100 KiB"
head -c 102400 /dev/urandom >"$S/sample"
mkdir -p "$S/mnt/stage1"
t0=$(now)
for i in $(seq "$FILES"); do cp "$S/sample" "$S/mnt/stage1/part-$i"; done
t1=$(now)
record sluice handoff-write "{\"files_per_second\": $(awk -v a="$t0" -v b="$t1" -v n="$FILES" 'BEGIN {printf "%.1f", n / (b - a)}')}"
before=$(ufs_bytes_read)
drop
record sluice handoff-read "$("$DLIO" small "$S/mnt/stage1" --jobs 8 | tail -1)"
after=$(ufs_bytes_read)
record sluice handoff-store-bytes "{\"before\": \"$before\", \"after\": \"$after\"}"
drop
record warm-read handoff-read "$("$DLIO" small "$S/mnt/stage1" --jobs 8 | tail -1)"

/usr/bin/python3 - "$RESULTS" "$OUT" "$SIZE" "$FILES" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out, size, files = sys.argv[2], sys.argv[3], sys.argv[4]
json.dump(rows, open(f"{out}/write.json", "w"), indent=1)
def get(who, scenario, key):
    for r in rows:
        if r["contender"] == who and r["scenario"] == scenario and key in r["result"]:
            return r["result"][key]
lines = ["# Writes through sluice (through mode) against aws s3 cp, s3fs and rclone, same RGW", "",
         f"One run of `bash bench/run_write_bench.sh` (SIZE={size} MiB, FILES={files}).", "",
         "| scenario | contender | MiB/s | files/s | notes |", "|---|---|---|---|---|"]
for r in rows:
    res = r["result"]
    notes = ", ".join(f"{k}={v}" for k, v in res.items() if k not in ("mib_per_second", "files_per_second"))
    lines.append(f"| {r['scenario']} | {r['contender']} | {res.get('mib_per_second', '')} | "
                 f"{res.get('files_per_second', '')} | {notes} |")
ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "n/a"
ck = get("sluice", "checkpoint", "mib_per_second")
lines += ["", "| target | this run | goal |", "|---|---|---|",
          f"| checkpoint save, through vs aws s3 cp | {ratio(ck, get('aws-s3-cp', 'checkpoint', 'mib_per_second'))} | >= 0.8x |",
          f"| checkpoint save vs s3fs | {ratio(ck, get('s3fs', 'checkpoint', 'mib_per_second'))} | >= 1.5x |",
          f"| checkpoint save vs rclone (writes) | {ratio(ck, get('rclone', 'checkpoint', 'mib_per_second'))} | >= 1.5x |",
          f"| async: time to close vs dd to the local disk | {ratio(get('sluice', 'async', 'mib_per_second'), get('local-disk', 'async', 'mib_per_second'))} | >= 0.8x |",
          f"| async: the same vs dd conv=fsync | {ratio(get('sluice', 'async', 'mib_per_second'), get('local-disk-fsync', 'async', 'mib_per_second'))} | |",
          f"| restore vs warm read | {ratio(get('sluice', 'restore', 'mib_per_second'), get('warm-read', 'restore', 'mib_per_second'))} | >= 0.8x |",
          f"| hand-off stage 2 vs warm pass | {ratio(get('sluice', 'handoff-read', 'files_per_second'), get('warm-read', 'handoff-read', 'files_per_second'))} | >= 0.8x |"]
open(f"{out}/write.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
