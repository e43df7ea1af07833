#!/usr/bin/env bash
# The main job end to end on a local folder (./demo by default), with
# oxtree alone and nothing to configure:
#   1. store:     init an archive repo, commit two versions of a small OS
#                 tree (a fake kernel included), log, ls, fsck;
#   2. transport: publish it with `oxtree serve` on 127.0.0.1
#                 (a free port), pull it into a sysroot's repo over HTTP;
#   3. deploy:    a sysroot in ./demo/sysroot: deploy v1, upgrade to v2 from
#                 the remote, show the /etc merge, roll back, status;
#   4. boot:      scripts/demo-boot.sh: compose examples/host.toml, to-disk,
#                 boot it in qemu, upgrade --reboot over HTTP, rollback
#                 --reboot (DEMO_BOOT=0 skips it).
# The sysroot part needs root (a bare repo keeps file owners); as another
# user it is skipped with a note. Nothing outside the folder is touched: the
# sysroot's boot entries live in demo/sysroot/boot, not the machine's /boot.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${1:-demo}
cargo build --release -q
OX=$PWD/target/release/oxtree
ox() { "$OX" --repo="$DEMO/repo" "$@"; }
step() { printf '\n== %s\n' "$*"; }

# Deployment roots are immutable (chattr +i, as ostree makes them): lift
# that before removing an earlier demo.
if [ -d "$DEMO/sysroot/ostree/deploy" ]; then
  find "$DEMO/sysroot/ostree/deploy" -mindepth 3 -maxdepth 3 -type d -path '*/deploy/*' \
    -exec chattr -i {} + 2>/dev/null || true
fi
rm -rf "$DEMO"
T=$DEMO/tree
mkdir -p "$T/usr/bin" "$T/usr/etc" "$T/usr/share/doc" "$T/usr/lib/modules/6.1.0-demo"
printf '#!/bin/sh\necho hello from oxtree v1\n' > "$T/usr/bin/hello"
chmod 0755 "$T/usr/bin/hello"
echo 'demo' > "$T/usr/etc/hostname"
printf 'NAME=oxtree-demo\nID=oxtree-demo\nVERSION_ID=1\n' > "$T/usr/etc/os-release"
echo 'fake kernel' > "$T/usr/lib/modules/6.1.0-demo/vmlinuz"
echo 'fake initramfs' > "$T/usr/lib/modules/6.1.0-demo/initramfs.img"
ln -s ../../etc/hostname "$T/usr/share/doc/hostname-link"

step "store: init (archive mode) and commit v1"
ox init --mode=archive
ox commit -b demo/os --timestamp=2026-01-01 -s "First build" --add-metadata-string=version=1.0 "$T"
step "store: commit v2"
printf '#!/bin/sh\necho hello from oxtree v2\n' > "$T/usr/bin/hello"
sed -i 's/VERSION_ID=1/VERSION_ID=2/' "$T/usr/etc/os-release"
ox commit -b demo/os --timestamp=2026-01-02 -s "Second build" --add-metadata-string=version=2.0 "$T"
step "store: log, ls, fsck"
ox log demo/os
ox ls -R demo/os /usr/bin
ox fsck
ox summary -u >/dev/null

step "transport: serve the repo on 127.0.0.1"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 8180)
"$OX" --repo="$DEMO/repo" serve --bind=127.0.0.1 --port="$port" >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
echo "serving $DEMO/repo at http://127.0.0.1:$port/"

if [ "$(id -u)" != 0 ]; then
  echo
  echo "not root: skipping the sysroot part (deploy, upgrade, rollback)."
  echo "demo done: $DEMO/repo"
  exit 0
fi

S=$DEMO/sysroot
sx() { "$OX" admin --sysroot="$S" --run-dir="$DEMO/run" "$@"; }
step "deploy: a new sysroot with stateroot 'demo'"
sx init-fs "$S"
sx os-init demo
"$OX" --repo="$S/ostree/repo" remote add --no-gpg-verify origin "http://127.0.0.1:$port/"
step "transport: pull v1 over HTTP into the sysroot's repo"
"$OX" --repo="$S/ostree/repo" pull origin "demo/os@$(ox rev-parse demo/os^)"
step "deploy v1"
sx deploy --os=demo origin:demo/os
D=$S/ostree/deploy/demo/deploy
echo 'local change' > "$D/$(ox rev-parse 'demo/os^').0/etc/motd"
step "upgrade to v2 (fetches only what changed); /etc keeps the local change"
sx upgrade --os=demo
sx status
v2=$D/$(ox rev-parse demo/os).0
echo "v2's /etc/motd: $(cat "$v2/etc/motd")"
echo "v2's hello: $(tail -1 "$v2/usr/bin/hello")"
step "boot entries"
cat "$S"/boot/loader/entries/*.conf
step "rollback to v1"
sx rollback
sx status
echo
echo "sysroot demo done: repo $DEMO/repo, sysroot $S"

# 4. The same life on a machine: compose a real image, make a disk, boot it
#    in qemu, upgrade and roll back inside it (skip with DEMO_BOOT=0).
if [ "${DEMO_BOOT:-1}" != 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    OX=$OX scripts/demo-boot.sh "$DEMO"
  else
    echo "(the boot demo needs root: skipped)"
  fi
fi
