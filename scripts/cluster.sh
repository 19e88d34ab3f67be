#!/usr/bin/env bash
# cluster.sh - a sluice cluster on this one machine, for trying it and for the multi-host
# tests: etcd and N workers, each worker in a network namespace of its own (its own address,
# reached over a bridge, so it is a separate host as far as the network goes). Needs root.
#
#   cluster.sh up [N]        start etcd and N workers (default 3); prints one line,
#                            `export SLUICE_CONFIG=...`, after which every sluice command on
#                            this host (mount add, fs, load, report, fuse) uses the cluster
#   cluster.sh kill W        SIGKILL worker W (1..N)
#   cluster.sh start W       start worker W again (same id and cache directory)
#   cluster.sh net W down|up cut worker W's link (a partition) or restore it
#   cluster.sh etcd stop|start
#   cluster.sh status        the workers, their addresses and whether they run
#   cluster.sh down          stop everything it started and remove its namespaces and DIR
#
# Environment: SLUICE_CLUSTER_DIR (default /tmp/sluice-cluster; clusters with different
# directories coexist), SLUICE_BINARY (default: build/release's, else `sluice` on PATH),
# WORKER_MEMORY (256MiB), WORKER_DISK (2GiB), LEASE_TTL (3s), WATCH_PID (if set, `down` runs
# by itself once that process is gone). file:// mounts are shared by every worker: the
# namespaces share this machine's file system.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${SLUICE_CLUSTER_DIR:-/tmp/sluice-cluster}
DIR=$(realpath -m "$DIR")
BIN=${SLUICE_BINARY:-}
if [ -z "$BIN" ]; then
  if [ -x "$ROOT/build/release/src/cli/sluice" ]; then BIN=$ROOT/build/release/src/cli/sluice; else BIN=$(command -v sluice || true); fi
fi
die() { echo "cluster.sh: $*" >&2; exit 1; }

# Names and addresses derive from DIR, so two clusters never share a bridge or a subnet.
H=$(( $(printf %s "$DIR" | cksum | cut -d' ' -f1) % 40000 ))
TAG=$(printf %04x "$H")
NET=10.$((100 + H / 256 % 150)).$((H % 256))
BRIDGE=sl${TAG}br
ETCD_PORT=2379
ns() { echo "sl${TAG}w$1"; }
veth() { echo "sl${TAG}h$1"; }
ip_of() { echo "$NET.$((10 + $1))"; }

worker_pid() { [ -f "$DIR/w$1/pid" ] && kill -0 "$(<"$DIR/w$1/pid")" 2>/dev/null && cat "$DIR/w$1/pid"; }

cluster_yaml() {
  cat <<YAML
cluster:
  store: etcd://$NET.1:$ETCD_PORT
  secret_file: $DIR/secret
  lease_ttl: ${LEASE_TTL:-3s}
YAML
}

start_worker() {
  local w=$1 ip; ip=$(ip_of "$w")
  [ -n "$BIN" ] || die "no sluice binary (build it, or set SLUICE_BINARY)"
  worker_pid "$w" >/dev/null && return 0
  mkdir -p "$DIR/w$w/cache"
  { cluster_yaml; cat <<YAML
worker:
  host: $ip
  rpc_port: 29990
  http_port: 29991
  memory_quota: ${WORKER_MEMORY:-256MiB}
  disks:
    - dir: $DIR/w$w/cache
      quota: ${WORKER_DISK:-2GiB}
log:
  file: $DIR/w$w/worker.log
YAML
  } >"$DIR/w$w/worker.yaml"
  ip netns exec "$(ns "$w")" env -u SLUICE_CONFIG "$BIN" worker --config "$DIR/w$w/worker.yaml" \
    >>"$DIR/w$w/stdout.log" 2>&1 </dev/null &
  echo $! >"$DIR/w$w/pid"
  for _ in $(seq 1 600); do
    curl -sf --noproxy '*' -o /dev/null --max-time 1 "http://$ip:29991/metrics" && return 0
    worker_pid "$w" >/dev/null || die "worker $w exited; see $DIR/w$w/stdout.log and worker.log"
    sleep 0.05
  done
  die "worker $w did not answer within 30 s; see $DIR/w$w/worker.log"
}

up() {
  local n=${1:-3}
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
  [ -f "$DIR/cluster.env" ] && die "a cluster already runs in $DIR (cluster.sh down first)"
  mkdir -p "$DIR"
  echo "N=$n" >"$DIR/cluster.env"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/secret"
  chmod 600 "$DIR/secret"
  ip link add "$BRIDGE" type bridge
  ip addr add "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for w in $(seq 1 "$n"); do
    ip netns add "$(ns "$w")"
    ip link add "$(veth "$w")" type veth peer name eth0 netns "$(ns "$w")"
    ip link set "$(veth "$w")" master "$BRIDGE" up
    ip -n "$(ns "$w")" addr add "$(ip_of "$w")/24" dev eth0
    ip -n "$(ns "$w")" link set eth0 up
    ip -n "$(ns "$w")" link set lo up
    ip -n "$(ns "$w")" route add default via "$NET.1"
  done
  WATCH_PID= bash "$ROOT/tests/fixtures/etcd.sh" start "$DIR/etcd" "$ETCD_PORT" "$NET.1" >/dev/null
  cluster_yaml >"$DIR/client.yaml"
  if [ -n "${WATCH_PID:-}" ]; then
    (while kill -0 "$WATCH_PID" 2>/dev/null; do sleep 1; done; "$0" down) >/dev/null 2>&1 </dev/null &
    disown
  fi
  for w in $(seq 1 "$n"); do start_worker "$w"; done
  echo "export SLUICE_CONFIG=$DIR/client.yaml"
}

down() {
  [ -f "$DIR/cluster.env" ] || return 0
  source "$DIR/cluster.env"
  for w in $(seq 1 "$N"); do
    pid=$(worker_pid "$w" || true)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  done
  bash "$ROOT/tests/fixtures/etcd.sh" stop "$DIR/etcd" || true
  for w in $(seq 1 "$N"); do
    ip netns del "$(ns "$w")" 2>/dev/null || true
    ip link del "$(veth "$w")" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -rf "$DIR"
}

need() { [ -f "$DIR/cluster.env" ] || die "no cluster runs in $DIR (cluster.sh up first)"; source "$DIR/cluster.env"; }
check_w() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$N" ] || die "no worker '$1' (1..$N)"; }

case ${1:-} in
  up) up "${2:-3}" ;;
  down) down ;;
  kill) need; check_w "${2:-}"; pid=$(worker_pid "$2") || die "worker $2 is not running"; kill -9 "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done ;;
  start) need; check_w "${2:-}"; start_worker "$2" ;;
  net) need; check_w "${2:-}"
       case ${3:-} in down|up) ip link set "$(veth "$2")" "$3" ;; *) die "net W down|up" ;; esac ;;
  etcd) need
        case ${2:-} in stop) bash "$ROOT/tests/fixtures/etcd.sh" stop "$DIR/etcd" ;;
                       start) bash "$ROOT/tests/fixtures/etcd.sh" restart "$DIR/etcd" ;;
                       *) die "etcd stop|start" ;; esac ;;
  status) need
          echo "etcd: http://$NET.1:$ETCD_PORT; SLUICE_CONFIG=$DIR/client.yaml"
          for w in $(seq 1 "$N"); do
            if pid=$(worker_pid "$w"); then st="running (pid $pid)"; else st=stopped; fi
            echo "worker $w: $(ip_of "$w"):29990 in netns $(ns "$w"), $st"
          done ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
