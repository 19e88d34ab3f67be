#!/usr/bin/env bash
# setup.sh - installs every Debian package that sluice's build, tests and benchmarks need.
# Idempotent: packages already present are skipped by apt. Needs root on Debian 12.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates openssl
  # fuzzing (scripts/fuzz.sh): clang 14 and its libFuzzer runtime (only recommended by clang)
  clang libclang-rt-14-dev
  # libraries (DESIGN.md, "Dependencies")
  libboost1.81-dev libboost-url1.81-dev libcurl4-openssl-dev libssl-dev
  libprotobuf-dev protobuf-compiler librocksdb-dev libfuse3-dev fuse3
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev libxxhash-dev
  pybind11-dev python3-dev libgtest-dev libgmock-dev libbenchmark-dev
  # test servers and tools: Ceph RGW (the reference S3, verifies SigV4), etcd, Python
  radosgw ceph-mon ceph-osd etcd-server etcd-client python3
  # S3 clients the gateway's tests read through: awscli, boto3, s3cmd (and rclone, below)
  awscli python3-boto3 s3cmd
  # the Python client (python/): fsspec, PyTorch, numpy, pytest, and pip + venv to install it
  python3-fsspec python3-torch python3-numpy python3-pytest python3-pip python3-setuptools python3-venv
  # benchmark contenders
  s3fs rclone fio python3-matplotlib
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all packages present" >&2
