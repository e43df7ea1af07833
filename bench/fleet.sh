#!/usr/bin/env bash
# The time a five-host rollout takes beyond the reboots themselves.
#
#   bench/fleet.sh [--runs N]
#
# Runs tests/fleet.rs's ignored `rollout_time` N times (default 3): etcd
# and `oxtree fleetlock serve` (one slot per group, host 0 a canary), a
# release served by `oxtree serve` on 127.0.0.1, five sysroots on
# loop-mounted images each with its own `oxtree updates run`
# (interval_secs = 1). It times release 2 from its commit until every host
# reported steady state on it, and subtracts the time the reboot script
# (finalize the staged deployment, run its health checks) took on every
# host. Needs root (loop mounts), etcd and etcdctl.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

for i in $(seq 1 "$runs"); do
  cargo test -q --test fleet -- --ignored --exact rollout_time --nocapture 2>/dev/null \
    | grep '^fleet-rollout'
done
