#!/usr/bin/env bash
# A short demo of the main job on a local folder (./demo by default):
# init a repository, commit a sample tree, show the log, check it out,
# and verify the repository — with oxtree alone, nothing to configure.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${1:-demo}
cargo build --release -q
ox() { ./target/release/oxtree --repo="$DEMO/repo" "$@"; }

rm -rf "$DEMO"
mkdir -p "$DEMO/tree/usr/bin" "$DEMO/tree/usr/etc" "$DEMO/tree/usr/share/doc"
echo '#!/bin/sh' > "$DEMO/tree/usr/bin/hello"; echo 'echo hello from oxtree' >> "$DEMO/tree/usr/bin/hello"
chmod 0755 "$DEMO/tree/usr/bin/hello"
echo 'demo' > "$DEMO/tree/usr/etc/hostname"
ln -s ../usr/etc/hostname "$DEMO/tree/usr/share/doc/hostname-link"

echo "== init (archive mode)"; ox init --mode=archive
echo "== commit v1"; ox commit -b demo/os --timestamp=2026-01-01 -s "First build" --add-metadata-string=version=1.0 "$DEMO/tree"
echo 'demo v2' > "$DEMO/tree/usr/etc/hostname"
echo "== commit v2"; ox commit -b demo/os -s "Second build" --add-metadata-string=version=2.0 "$DEMO/tree"
echo "== log"; ox log demo/os
echo "== ls -R"; ox ls -R demo/os
echo "== checkout"; ox checkout -U demo/os "$DEMO/checkout"; "$DEMO/checkout/usr/bin/hello"
echo "== fsck"; ox fsck
echo "demo done: $DEMO/repo"
