#!/usr/bin/env bash
# The host's life on a (virtual) machine, in DEMO/host (./demo/host by
# default), called by scripts/demo.sh:
#   1. compose:  examples/host.toml (systemd, kernel, ssh, podman, oxtree)
#                from real Debian packages into an archive repo;
#   2. disk:     `oxtree to-disk` makes a bootable qcow2 (GPT, GRUB for BIOS
#                and UEFI, the sysroot, root=UUID=...);
#   3. boot:     qemu (TCG) boots it; its only network is the demo's own
#                HTTP server on 127.0.0.1 (user networking, restrict=on);
#   4. upgrade:  a v2 is committed and served; in the guest,
#                `oxtree admin upgrade --reboot` pulls it and reboots into it;
#   5. rollback: `oxtree admin rollback --reboot` boots v1 again.
# Needs root (mounts, loop devices). Only processes it started are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=${1:-demo}/host
OX=${OX:-$PWD/target/release/oxtree}
[ -x "$OX" ] || cargo build --release -q
scripts/install-deps.sh
step() { printf '\n== %s\n' "$*"; }

rm -rf "$DEMO"
mkdir -p "$DEMO"
DEMO=$(cd "$DEMO" && pwd)
ox() { "$OX" --repo="$DEMO/repo" "$@"; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

step "compose examples/host.toml (downloads are cached in /var/cache/oxtree-demo)"
ox init --mode=archive
ox compose tree --cachedir=/var/cache/oxtree-demo/apt examples/host.toml | tail -n 1
REF=debian/trixie/x86_64/host

step "to-disk: a bootable qcow2"
ssh-keygen -q -t ed25519 -N '' -C oxtree-demo -f "$DEMO/key"
ox to-disk --ref=$REF --os=debian --size=6G --remote-url=http://10.0.2.100 \
  --root-ssh-authorized-keys="$DEMO/key.pub" "$DEMO/host.qcow2"
ls -lh "$DEMO/host.qcow2"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=$(free_port)
SSH=$(free_port)
ox serve --port="$HTTP" >"$DEMO/serve.log" 2>&1 &
pids+=($!)

step "boot it in qemu (TCG: a minute or two)"
qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 2048 -display none \
  -serial "file:$DEMO/serial.log" \
  -drive "file=$DEMO/host.qcow2,if=virtio,format=qcow2" \
  -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$SSH-:22,guestfwd=tcp:10.0.2.100:80-cmd:nc 127.0.0.1 $HTTP" \
  -device virtio-net-pci,netdev=n0 >"$DEMO/qemu.log" 2>&1 &
pids+=($!)
g() {
  ssh -q -i "$DEMO/key" -p "$SSH" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o BatchMode=yes -o ConnectTimeout=5 root@127.0.0.1 "$@"
}
boot_id() { g cat /proc/sys/kernel/random/boot_id 2>/dev/null || true; }
wait_boot() { # wait until ssh answers from a boot other than $1
  for _ in $(seq 1 180); do
    id=$(boot_id)
    if [ -n "$id" ] && [ "$id" != "${1:-}" ]; then return 0; fi
    sleep 5
  done
  echo "the guest did not come up; see $DEMO/serial.log" >&2
  exit 1
}
wait_boot
g oxtree admin status
g 'echo "edited by the demo" >> /etc/motd; echo kept > /var/demo-file; findmnt -no OPTIONS /usr'

step "upgrade: commit v2 on the host, then admin upgrade --reboot in the guest"
mkdir -p "$DEMO/v2/usr/share/oxtree-demo"
echo 2 >"$DEMO/v2/usr/share/oxtree-demo/version"
ox commit -b $REF --tree=ref=$REF --tree=dir="$DEMO/v2" --add-metadata-string=version=2 -s "v2"
old=$(boot_id)
g oxtree admin upgrade --reboot || true
wait_boot "$old"
g 'oxtree admin status; cat /usr/share/oxtree-demo/version /var/demo-file; tail -n 1 /etc/motd'

step "rollback --reboot: v1 again"
old=$(boot_id)
g oxtree admin rollback --reboot || true
wait_boot "$old"
g oxtree admin status
g systemctl poweroff || true
sleep 5
step "done: the disk is $DEMO/host.qcow2, the console log $DEMO/serial.log"
