#!/usr/bin/env bash
# run_fuse_bench.sh - sluice's FUSE mount against what users would pick instead, in one run,
# on one bucket of a local Ceph RGW, page cache dropped before every pass (BENCHMARKS.md):
# local disk, s3fs (disk cache; tuned with parallel_count=30, and as s3fs-defaults with the
# command line of BENCHMARKS.md), rclone mount (VFS cache full), direct GETs, and sluice.
# Scenarios: a 256 MiB file read sequentially; 1000 x 100 KiB files with 1 and 8 readers;
# `ls -l` of that 1000-entry directory and of 10,000 files of 0-4 KiB (stat of each), time to
# first byte; a resnet50-like DLIO run
# (records of 114,660 B), with the most simulated accelerators kept at AU >= 90%. Each: a cold
# pass, then a warm pass. Then `preload`: on a resnet50-like dataset larger than sluice's
# memory tier (896 MiB), a cold epoch 1 against one with `sluice load` started alongside.
# Writes bench/results/fuse.json, fuse.md and (with python3-matplotlib) fuse.png.
#   SCALE        multiplies dataset sizes (default 1)
#   REPEAT       runs of each cold+warm pair; the tables show the median (default 3)
#   ACCELERATORS simulated accelerators in the resnet50-like and preload epochs (default 8)
#   CONTENDERS   which to run (default "local direct s3fs s3fs-defaults rclone sluice")
#   SCENARIOS    which to run (default: all, in the order of the table)
#   SCRATCH      scratch directory (default /var/tmp/sluice-fuse-bench)
# At the defaults it takes about 11 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release --target sluice dlio_bench | grep -v '^\[' || true
SLUICE=$PWD/build/release/src/cli/sluice
DLIO=$PWD/build/release/bench/dlio_bench
SCALE=${SCALE:-1}
REPEAT=${REPEAT:-3}
ACCELERATORS=${ACCELERATORS:-8}  # simulated accelerators of the resnet50-like epochs
CONTENDERS=${CONTENDERS:-local direct s3fs s3fs-defaults rclone sluice}
SCENARIOS=${SCENARIOS:-seq-256MiB lsl-1000 lsl-10k small-100KiB-1thread small-100KiB-8threads ttfb resnet50-like resnet50-like-max-accelerators preload}
wants() { [[ " $CONTENDERS " == *" $1 "* ]]; }
S=${SCRATCH:-/var/tmp/sluice-fuse-bench}
OUT=$PWD/bench/results
mkdir -p "$OUT"
rm -rf "$S"; mkdir -p "$S"/{data,mnt}
PIDS=()
cleanup() {
  for m in "$S"/mnt/*; do umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash tests/fixtures/radosgw.sh stop "$S/rgw" >/dev/null 2>&1 || true
  rm -rf "$S"
}
trap cleanup EXIT
drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }
log() { echo "== $*" >&2; }

log "dataset (scale $SCALE)"
/usr/bin/python3 - "$S/data" "$SCALE" <<'PY'
import os, random, sys
root, scale = sys.argv[1], int(sys.argv[2])
rng = random.Random(1)
for d in ("big", "small", "resnet", "resnet-large", "meta"): os.makedirs(f"{root}/{d}")
with open(f"{root}/big/file.bin", "wb") as f:
    for _ in range(256 * scale): f.write(rng.randbytes(1 << 20))
for i in range(1000 * scale):
    with open(f"{root}/small/img_{i:06d}.jpg", "wb") as f: f.write(rng.randbytes(100 * 1024))
for i in range(10000 * scale):
    with open(f"{root}/meta/m_{i:06d}", "wb") as f: f.write(rng.randbytes(rng.randrange(4097)))
for i in range(8 * scale):
    with open(f"{root}/resnet/shard_{i:04d}.rec", "wb") as f: f.write(rng.randbytes(256 * 114660))
for i in range(32 * scale):
    with open(f"{root}/resnet-large/shard_{i:04d}.rec", "wb") as f: f.write(rng.randbytes(256 * 114660))
PY
PORT=$((20000 + RANDOM % 20000))
eval "$(bash tests/fixtures/radosgw.sh start "$S/rgw" "$PORT" bench)"
export AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION
"$SLUICE" ufs cp -R "$S/data" s3://bench >/dev/null 2>&1

RESULTS="$S/results.jsonl"
: >"$RESULTS"
record() {  # contender scenario pass json
  echo "{\"contender\": \"$1\", \"scenario\": \"$2\", \"pass\": \"$3\", \"result\": $4}" >>"$RESULTS"
  echo "$1 $2 $3: $4" >&2
}
wait_mount() { for _ in $(seq 200); do grep -q " $1 " /proc/self/mountinfo && return 0; sleep 0.05; done; return 1; }

# Every contender is set up first and they take turns within each repetition, so a drift in
# the machine's speed (disk, CPU: this is a shared VM) hits all of them alike.
declare -A DIR RESET SETTLE
if wants local; then
  DIR[local]=$S/data RESET[local]=true
fi
if wants s3fs; then
  echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" >"$S/s3fs.passwd"; chmod 600 "$S/s3fs.passwd"
  s3fs_mount() {
    umount "$S/mnt/s3fs" 2>/dev/null || true; rm -rf "$S/s3fs-cache"; mkdir -p "$S/mnt/s3fs" "$S/s3fs-cache"
    s3fs bench "$S/mnt/s3fs" -o "url=$AWS_ENDPOINT_URL,use_path_request_style,passwd_file=$S/s3fs.passwd" \
      -o "use_cache=$S/s3fs-cache,parallel_count=30,multireq_max=30"
    wait_mount "$S/mnt/s3fs"
  }
  s3fs_mount
  DIR[s3fs]=$S/mnt/s3fs RESET[s3fs]=s3fs_mount
fi
if wants s3fs-defaults; then  # BENCHMARKS.md's command line as it stands, for reference
  echo "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" >"$S/s3fs.passwd"; chmod 600 "$S/s3fs.passwd"
  s3fs_defaults_mount() {
    umount "$S/mnt/s3fs-defaults" 2>/dev/null || true
    rm -rf "$S/s3fs-defaults-cache"; mkdir -p "$S/mnt/s3fs-defaults" "$S/s3fs-defaults-cache"
    s3fs bench "$S/mnt/s3fs-defaults" -o "url=$AWS_ENDPOINT_URL,use_path_request_style,passwd_file=$S/s3fs.passwd" \
      -o "use_cache=$S/s3fs-defaults-cache"
    wait_mount "$S/mnt/s3fs-defaults"
  }
  s3fs_defaults_mount
  DIR[s3fs-defaults]=$S/mnt/s3fs-defaults RESET[s3fs-defaults]=s3fs_defaults_mount
fi
if wants rclone; then
  cat >"$S/rclone.conf" <<CONF
[s3]
type = s3
provider = Other
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY
endpoint = $AWS_ENDPOINT_URL
force_path_style = true
CONF
  rclone_mount() {
    umount "$S/mnt/rclone" 2>/dev/null || true; rm -rf "$S/rclone-cache"; mkdir -p "$S/mnt/rclone"
    env -u AWS_CA_BUNDLE rclone --config "$S/rclone.conf" mount s3:bench "$S/mnt/rclone" --vfs-cache-mode full \
      --vfs-cache-max-size 4G --cache-dir "$S/rclone-cache" --daemon
    wait_mount "$S/mnt/rclone"
  }
  rclone_mount
  DIR[rclone]=$S/mnt/rclone RESET[rclone]=rclone_mount
fi
if wants sluice; then
  export SLUICE_HOME=$S/sluice-home
  mkdir -p "$S/mnt/sluice"
  "$SLUICE" local --ufs s3://bench -o "endpoint=$AWS_ENDPOINT_URL" --cache-dir "$S/sluice-cache" --cache-size 4GiB \
    --memory-size 512MiB --rpc-port 0 --http-port 0 --mountpoint "$S/mnt/sluice" >"$S/sluice.log" 2>&1 &
  PIDS+=($!)
  wait_mount "$S/mnt/sluice" || { cat "$S/sluice.log" >&2; exit 1; }
  sluice_reset() { "$SLUICE" free / >/dev/null; "$SLUICE" fs sync / >/dev/null; }
  # sluice writes the pages a pass kept in memory to its disk tier once reads go quiet; wait
  # (untimed) for that to end, so the next pass, its own or another contender's, does not
  # share the CPU with it.
  sluice_settle() {
    local i
    for i in $(seq 600); do
      "$SLUICE" report | grep -q "not on disk yet" || return 0
      sleep 0.2
    done
    echo "sluice still writing pages to disk after 120 s" >&2
  }
  DIR[sluice]=$S/mnt/sluice RESET[sluice]=sluice_reset SETTLE[sluice]=sluice_settle
fi
MOUNTED=()
for who in $CONTENDERS; do [[ -n ${DIR[$who]:-} ]] && MOUNTED+=("$who"); done

# The command for scenario $1 on directory $2.
command_for() {
  local d=$2
  case $1 in
    seq-256MiB) echo "$DLIO seq $d/big/file.bin --jobs 1" ;;
    lsl-1000) echo "$DLIO lsl $d/small" ;;
    lsl-10k) echo "$DLIO lsl $d/meta" ;;
    small-100KiB-1thread) echo "$DLIO small $d/small --jobs 1" ;;
    small-100KiB-8threads) echo "$DLIO small $d/small --jobs 8" ;;
    ttfb) echo "$DLIO ttfb $d/small" ;;
    resnet50-like) echo "$DLIO train $d/resnet --record-size 114660 --batch 64 --readers 8 --compute 0.05 --accelerators $ACCELERATORS --epochs 1" ;;
    preload) echo "$DLIO train $d/resnet-large --record-size 114660 --batch 64 --readers 8 --compute 0.05 --accelerators $ACCELERATORS --epochs 1" ;;
  esac
}
# Direct parallel GETs, with no cache: the cold baseline of two scenarios.
direct_for() {
  case $1 in
    seq-256MiB) "$SLUICE" ufs read -j 8 s3://bench/big | sed -E 's/.*: ([0-9.]+) MiB\/s.*/{"mib_per_second": \1}/' ;;
    small-100KiB-8threads) "$SLUICE" ufs read -j 8 s3://bench/small |
      sed -E 's/.*: ([0-9.]+) MiB\/s, ([0-9]+) files\/s.*/{"files_per_second": \2, "mib_per_second": \1}/' ;;
  esac
}

for name in $SCENARIOS; do
  [[ $name == resnet50-like-max-accelerators || $name == preload ]] && continue
  log "$name"
  for _ in $(seq "$REPEAT"); do
    for who in "${MOUNTED[@]}"; do
      cmd=$(command_for "$name" "${DIR[$who]}")
      eval "${RESET[$who]}"
      for pass in cold warm; do
        drop; record "$who" "$name" "$pass" "$($cmd)"
        eval "${SETTLE[$who]:-}"
      done
    done
    if wants direct && [[ $name == seq-256MiB || $name == small-100KiB-8threads ]]; then
      drop; record direct "$name" cold "$(direct_for "$name")"
    fi
  done
done

if [[ " $SCENARIOS " == *" resnet50-like-max-accelerators "* ]]; then
  # Warm epochs with more and more simulated accelerators: the most that stay at AU >= 90%
  # (the median AU of REPEAT epochs at each count), contenders taking turns at each count.
  log "resnet50-like-max-accelerators"
  declare -A BEST DONE
  for who in "${MOUNTED[@]}"; do  # an untimed epoch first, so every cache holds the data
    "$DLIO" train "${DIR[$who]}/resnet" --record-size 114660 --batch 64 --readers 8 --compute 0 --epochs 1 >/dev/null
    eval "${SETTLE[$who]:-}"
  done
  for n in 1 2 4 8 16; do
    for who in "${MOUNTED[@]}"; do
      [[ -n ${DONE[$who]:-} ]] && continue
      au=$(for _ in $(seq "$REPEAT"); do
        drop
        "$DLIO" train "${DIR[$who]}/resnet" --record-size 114660 --batch 64 --readers 8 --compute 0.05 \
          --accelerators "$n" --epochs 1 | sed -E 's/.*"train_au_percentage": ([0-9.]+).*/\1/'
      done | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
      echo "$who resnet50-like warm, $n accelerators: median AU $au%" >&2
      if awk -v a="$au" 'BEGIN { exit !(a >= 90) }'; then BEST[$who]=$n; else DONE[$who]=1; fi
    done
  done
  for who in "${MOUNTED[@]}"; do
    record "$who" resnet50-like-max-accelerators warm "{\"accelerators_at_au90\": ${BEST[$who]:-0}}"
  done
fi
if [[ " $SCENARIOS " == *" preload "* ]] && wants sluice; then
  # Epoch 1 with `sluice load` started at the same moment as training, against epoch 1 without
  # it, taking turns. The dataset is larger than the memory tier, as training data usually is
  # (and an epoch of the small one is over before a preload has anything to do).
  log "preload"
  cmd=$(command_for preload "$S/mnt/sluice")
  for _ in $(seq "$REPEAT"); do
    sluice_reset; drop; record sluice preload cold "$($cmd)"; sluice_settle
    sluice_reset; drop; "$SLUICE" load /resnet-large >/dev/null; record sluice preload cold+load "$($cmd)"
    "$SLUICE" load /resnet-large --wait >/dev/null; sluice_settle  # the preload, if still running, ends
  done
fi
if wants sluice; then
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/${PIDS[0]}/status")
  record sluice rss all "{\"peak_rss_mib\": $((hwm / 1024)), \"memory_quota_mib\": 512}"
fi
for who in s3fs s3fs-defaults rclone sluice; do umount "$S/mnt/$who" 2>/dev/null || true; done

/usr/bin/python3 - "$RESULTS" "$OUT" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
out = sys.argv[2]
json.dump(rows, open(f"{out}/fuse.json", "w"), indent=1)  # every run; the tables show medians
KEYS = (("mib_per_second", "MiB/s"), ("files_per_second", "files/s"), ("ms", "ms"), ("p50_ms", "ms p50"),
        ("train_au_percentage", "% AU"), ("peak_rss_mib", "MiB RSS"), ("accelerators_at_au90", "accelerators at AU >= 90%"))
def key_of(r):
    return next((k for k, _ in KEYS if k in r["result"]), None)
def median(group):  # the run with the median figure of its group
    k = key_of(group[0])
    return sorted(group, key=lambda r: r["result"].get(k, 0))[(len(group) - 1) // 2] if k else group[0]
def metric(r):
    x = r["result"]
    for k, unit in KEYS:
        if k in x:
            return f'{x[k]:g} {unit}' + (f' (p99 {x["p99_ms"]:g})' if k == "p50_ms" else "")
    return json.dumps(x)
groups = {}
for r in rows:
    groups.setdefault((r["contender"], r["scenario"], r["pass"]), []).append(r)
rows = [median(g) for g in groups.values()]
scen = sorted({(r["scenario"], r["pass"]) for r in rows})
who = ["local", "direct", "s3fs", "s3fs-defaults", "rclone", "sluice"]
lines = ["| scenario | pass | " + " | ".join(who) + " |", "|---|---|" + "---|" * len(who)]
for s, p in scen:
    cells = []
    for w in who:
        m = [metric(r) for r in rows if r["contender"] == w and r["scenario"] == s and r["pass"] == p]
        cells.append(m[0] if m else "")
    lines.append(f"| {s} | {p} | " + " | ".join(cells) + " |")
# The figures the FUSE issue asks for, from the medians above.
def fig(who, scen, pas, key):
    m = [r["result"].get(key) for r in rows if r["contender"] == who and r["scenario"] == scen and r["pass"] == pas]
    return m[0] if m and m[0] is not None else None
def ratio(a, b, want, what, higher=True):
    if a is None or b is None or b == 0:
        return None
    x = a / b
    return (what, f"{x:.2f}x", f"{'>=' if higher else '<='} {want}x", x >= want if higher else x <= want)
checks = [
    ratio(fig("sluice", "seq-256MiB", "warm", "mib_per_second"), fig("local", "seq-256MiB", "warm", "mib_per_second"), 0.8, "warm 256 MiB vs local disk"),
    ratio(fig("sluice", "seq-256MiB", "warm", "mib_per_second"), fig("s3fs", "seq-256MiB", "warm", "mib_per_second"), 1.5, "warm 256 MiB vs s3fs"),
    ratio(fig("sluice", "seq-256MiB", "warm", "mib_per_second"), fig("rclone", "seq-256MiB", "warm", "mib_per_second"), 2, "warm 256 MiB vs rclone"),
    ratio(fig("sluice", "small-100KiB-8threads", "warm", "files_per_second"), fig("local", "small-100KiB-8threads", "warm", "files_per_second"), 0.5, "warm 100 KiB files/s vs local disk"),
    ratio(fig("sluice", "small-100KiB-8threads", "warm", "files_per_second"), fig("rclone", "small-100KiB-8threads", "warm", "files_per_second"), 5, "warm 100 KiB files/s vs rclone"),
    ratio(fig("sluice", "seq-256MiB", "cold", "mib_per_second"), fig("direct", "seq-256MiB", "cold", "mib_per_second"), 0.9, "cold 256 MiB vs direct parallel GETs"),
    ratio(fig("sluice", "seq-256MiB", "cold", "mib_per_second"), fig("s3fs", "seq-256MiB", "cold", "mib_per_second"), 1.5, "cold 256 MiB vs s3fs"),
    ratio(fig("sluice", "small-100KiB-8threads", "cold", "files_per_second"), fig("direct", "small-100KiB-8threads", "cold", "files_per_second"), 0.8, "cold 100 KiB files/s vs direct parallel GETs"),
    ratio(fig("sluice", "small-100KiB-8threads", "cold", "files_per_second"), fig("s3fs", "small-100KiB-8threads", "cold", "files_per_second"), 2, "cold 100 KiB files/s vs s3fs"),
    ratio(fig("sluice", "seq-256MiB", "cold", "mib_per_second"), fig("s3fs-defaults", "seq-256MiB", "cold", "mib_per_second"), 1.5, "(for reference) cold 256 MiB vs s3fs at its defaults"),
    ratio(fig("sluice", "lsl-1000", "cold", "ms"), fig("rclone", "lsl-1000", "cold", "ms"), 1, "ls -l cold vs rclone", higher=False),
    ratio(fig("sluice", "lsl-1000", "warm", "ms"), 20, 1, "ls -l warm vs 20 ms", higher=False),
    ratio(fig("sluice", "resnet50-like-max-accelerators", "warm", "accelerators_at_au90"), max(fig("s3fs", "resnet50-like-max-accelerators", "warm", "accelerators_at_au90") or 0, fig("rclone", "resnet50-like-max-accelerators", "warm", "accelerators_at_au90") or 0) or None, 2, "accelerators at AU >= 90% vs the better of s3fs and rclone"),
    ratio(fig("sluice", "preload", "cold+load", "train_au_percentage"), fig("sluice", "preload", "cold", "train_au_percentage"), 1.0001, "epoch 1 AU with sluice load vs without (896 MiB)"),
    ratio(fig("sluice", "rss", "all", "peak_rss_mib"), 512 + 200, 1, "FUSE + worker peak RSS vs memory quota + 200 MiB", higher=False),
]
lines += ["", "| target | measured | wanted | met |", "|---|---|---|---|"]
lines += [f"| {w} | {x} | {t} | {'yes' if ok else 'no'} |" for w, x, t, ok in filter(None, checks)]
open(f"{out}/fuse.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
try:
    import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, (s, key, label) in zip(axes, [("seq-256MiB", "mib_per_second", "MiB/s, 256 MiB sequential"),
                                          ("small-100KiB-8threads", "files_per_second", "files/s, 100 KiB x 8 threads")]):
        xs, cold, warm = [], [], []
        for w in who:
            c = [r["result"].get(key, 0) for r in rows if r["contender"] == w and r["scenario"] == s and r["pass"] == "cold"]
            h = [r["result"].get(key, 0) for r in rows if r["contender"] == w and r["scenario"] == s and r["pass"] == "warm"]
            xs.append(w); cold.append(c[0] if c else 0); warm.append(h[0] if h else 0)
        idx = range(len(xs))
        ax.bar([i - 0.2 for i in idx], cold, 0.4, label="cold"); ax.bar([i + 0.2 for i in idx], warm, 0.4, label="warm")
        ax.set_xticks(list(idx)); ax.set_xticklabels(xs); ax.set_title(label); ax.legend()
    fig.tight_layout(); fig.savefig(f"{out}/fuse.png", dpi=100)
except ImportError:
    print("(python3-matplotlib not installed: no chart)")
PY
