#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests drive
# (the real ostree CLI, attr tools), then runs format, lint and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ostree >/dev/null || need+=(ostree)
command -v getfattr >/dev/null || need+=(attr)
command -v tar >/dev/null || need+=(tar)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need[*]} (run as root or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace "$@"
