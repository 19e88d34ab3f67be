#!/usr/bin/env bash
# demo.sh - the README's run command: on a fresh Debian 12 machine (as root) it installs the
# packages, builds sluice, starts a local Ceph RGW (a real S3 server), uploads a generated
# sample dataset to it, runs `sluice local` over the bucket, and reads the dataset through the
# cache through a FUSE mount twice, training-style: a cold epoch (from S3) and a warm epoch
# (from the cache), with their speeds and the hit ratio; then a preload. Everything it starts is stopped at the end; everything it
# writes is in one temp directory, removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target sluice | grep -v "^\[" || true
SLUICE=$PWD/build/release/src/cli/sluice

WORK=$(mktemp -d /tmp/sluice-demo-XXXXXX)
RGW=$WORK/rgw
LOCAL_PID=
cleanup() {
  [ -n "$LOCAL_PID" ] && kill "$LOCAL_PID" 2>/dev/null && wait "$LOCAL_PID" 2>/dev/null
  bash tests/fixtures/radosgw.sh stop "$RGW" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

step "Generating a sample dataset: 200 image-like files of 100 KiB and 2 shards of 32 MiB"
mkdir -p "$WORK/dataset/train/images" "$WORK/dataset/train/shards"
/usr/bin/python3 - "$WORK/dataset/train" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(42)
for i in range(200):
    with open(f"{root}/images/img_{i:05d}.jpg", "wb") as f:
        f.write(rng.randbytes(100 * 1024))
for i in range(2):
    with open(f"{root}/shards/shard-{i:02d}.tar", "wb") as f:
        f.write(rng.randbytes(32 << 20))
PY

step "Starting a local Ceph RADOS Gateway (S3 with SigV4 checks) with bucket 'datasets'"
PORT=$(( 20000 + RANDOM % 20000 ))
eval "$(bash tests/fixtures/radosgw.sh start "$RGW" "$PORT" datasets)"
export AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
echo "S3 endpoint: $AWS_ENDPOINT_URL"

step "Uploading the dataset to S3 (large files go up as multipart uploads)"
run "$SLUICE" ufs cp -R "$WORK/dataset/train" s3://datasets/train

step "Listing it through the S3 under-store"
run "$SLUICE" ufs ls s3://datasets/train
run "$SLUICE" ufs ls -l s3://datasets/train/shards
"$SLUICE" ufs ls -R s3://datasets/train | wc -l | sed 's/^/files listed recursively: /'
run "$SLUICE" ufs stat s3://datasets/train/shards/shard-00.tar

step "Reading a byte range, and checking the bytes against the local copy"
printf 'via S3:    '
run "$SLUICE" ufs cat --offset 1048570 --length 16 s3://datasets/train/shards/shard-00.tar | od -An -tx1
printf 'local file:'
dd if="$WORK/dataset/train/shards/shard-00.tar" bs=1 skip=1048570 count=16 status=none | od -An -tx1
"$SLUICE" ufs cat s3://datasets/train/images/img_00007.jpg | cmp - "$WORK/dataset/train/images/img_00007.jpg" &&
  echo "img_00007.jpg: identical"

step "Reading the whole dataset straight from S3 (no cache) vs. local disk, 8 threads"
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
printf 'S3 (RGW):   '; "$SLUICE" ufs read -j 8 s3://datasets/train
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
printf 'local disk: '; "$SLUICE" ufs read -j 8 "$WORK/dataset/train"

step "Starting sluice local over s3://datasets/train (1 GiB memory + 2 GiB disk cache), mounted at $WORK/mnt"
export SLUICE_HOME=$WORK/home
mkdir -p "$WORK/mnt"
"$SLUICE" local --ufs s3://datasets/train -o "endpoint=$AWS_ENDPOINT_URL" --cache-dir "$WORK/cache" \
  --cache-size 2GiB --memory-size 1GiB --rpc-port 0 --http-port 0 --mountpoint "$WORK/mnt" >"$WORK/local.log" 2>&1 &
LOCAL_PID=$!
for _ in $(seq 100); do grep -q " $WORK/mnt " /proc/self/mountinfo && break; sleep 0.1; done
head -n 5 "$WORK/local.log"
run ls -l "$WORK/mnt/shards"
run "$SLUICE" fs ls -l /shards
run "$SLUICE" mount list

step "A training-style read of the mount: every file once, shuffled, 4 reader threads; cold, then warm"
train_epoch() {
  /usr/bin/python3 - "$WORK/mnt" <<'PY'
import concurrent.futures, os, random, sys, time
root = sys.argv[1]
files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
random.Random(7).shuffle(files)
def read(path):
    with open(path, "rb") as f:
        return len(f.read())
t0 = time.time()
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    total = sum(pool.map(read, files))
dt = time.time() - t0
print(f"{len(files)} files, {total / 2**20:.1f} MiB in {dt:.2f}s: {len(files) / dt:.0f} files/s, {total / 2**20 / dt:.1f} MiB/s")
PY
}
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
printf 'epoch 1 (cold, from S3): '; train_epoch
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
printf 'epoch 2 (warm, cache):   '; train_epoch
run "$SLUICE" report
printf 'through the CLI client, warm: '; "$SLUICE" fs read -j 8 /

step "Preloading: free the cache, then load it back with a progress bar"
run "$SLUICE" free /
run "$SLUICE" load / --progress
run "$SLUICE" fs check-cached /

step "Errors name what went wrong"
"$SLUICE" ufs cat s3://datasets/train/missing.bin || echo "(exit code $?)"
"$SLUICE" ufs ls -o secret_key=wrong s3://datasets/train || echo "(exit code $?)"
"$SLUICE" ufs cat 's3://datasets/train/../../etc/passwd' || echo "(exit code $?)"
"$SLUICE" fs cat /images/missing.jpg || echo "(exit code $?)"
echo
echo "demo finished; stopping sluice local and the S3 server"
