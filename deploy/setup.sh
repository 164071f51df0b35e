#!/usr/bin/env bash
# Installs what Sluice needs to build, test and benchmark on Debian 12.
# Idempotent and quiet when everything is present: it asks dpkg first and
# only runs apt-get for packages that are missing.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config python3 git
  liburing-dev libjemalloc-dev libcmocka-dev libbenchmark-dev
  libzstd-dev liblz4-dev libsnappy-dev zlib1g-dev libssl-dev
  librdkafka-dev kcat python3-kafka python3-confluent-kafka
  clang libclang-rt-14-dev
  libzookeeper-st-dev zookeeper libjansson-dev nftables
  libnats-dev nats-server libhiredis-dev redis-server iperf3 fio gnuplot-nox
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
