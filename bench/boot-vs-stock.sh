#!/usr/bin/env bash
# Boot time under qemu: a stock Debian trixie minbase with the same kernel
# as examples/host.toml, booted through GRUB as installed by grub-install
# (or with --stock-boot direct, a direct kernel boot), and, side by side in
# the same run, an oxtree disk image through its own GRUB.
#
#   bench/boot-vs-stock.sh [--runs N] [--stock-boot grub|direct]
#                          [--image DISK [--format qcow2|raw] [--uefi]]
#
# Every boot uses the VM tests' qemu settings (tests/support/vm.rs: TCG,
# -smp 2 -cpu max -m 2048, virtio disk with cache=unsafe, user networking
# with restrict=on and ssh forwarded from 127.0.0.1) on a fresh qcow2
# overlay, so no run sees an earlier run's writes. Two times are taken from
# qemu's start:
#   ready   the line OXTREE-BOOT-READY on the serial console (the stock
#           image prints it from a unit ordered after multi-user.target; an
#           oxtree image should print it once boot-complete.target is
#           reached), or `-` if it never came
#   ssh     the first `ssh root@… true` that succeeds (the key is this
#           script's, handed to the guest as fw_cfg opt/oxtree/authorized_keys;
#           an oxtree image must have it authorized: build it with
#           `oxtree to-disk --root-ssh-authorized-keys $KEY.pub`, where KEY is
#           printed first, or pass --key)
# Runs alternate (stock, image, stock, image, …); the table shows medians and
# image/stock ratios (target for the oxtree image: <= 1.2).
#
# The stock image is the VM tests' cached fixture
# (/var/cache/oxtree-tests/fixtures/stock-minbase-*, the one built by the
# current tests/support/stock-minbase.sh); without one it is built here.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
image= format=qcow2 uefi=0 key= stock_boot=grub
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --image) image=$(realpath "$2"); shift 2 ;;
    --format) format=$2; shift 2 ;;
    --uefi) uefi=1; shift ;;
    --stock-boot) stock_boot=$2; shift 2 ;;
    --key) key=$(realpath "$2"); shift 2 ;;
    *) echo "usage: $0 [--runs N] [--image DISK [--format qcow2|raw] [--uefi]] [--key PRIVATE_KEY]" >&2; exit 2 ;;
  esac
done
TIMEOUT=${OXTREE_BOOT_TIMEOUT:-600}

scratch=$(mktemp -d /var/tmp/oxtree-boot-bench.XXXXXX)
qemu_pid=
cleanup() {
  if [ -n "$qemu_pid" ]; then kill -9 "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$scratch"
}
trap cleanup EXIT

if [ -z "$key" ]; then
  key=$scratch/id_ed25519
  ssh-keygen -q -t ed25519 -N '' -C oxtree-bench -f "$key"
fi
echo "ssh key: $key (.pub)" >&2

fixtures=${OXTREE_TEST_FIXTURES:-/var/cache/oxtree-tests/fixtures}
stock=
for d in "$fixtures"/stock-minbase-*/; do
  if [ -f "$d/build.sh" ] && cmp -s "$d/build.sh" tests/support/stock-minbase.sh; then
    stock=${d%/}
  fi
done
if [ -z "$stock" ]; then
  echo "building the stock minbase (once; cached in $fixtures)" >&2
  stock=$fixtures/stock-minbase-bench
  rm -rf "$stock"
  sh tests/support/stock-minbase.sh "$stock" >"$scratch/stock-build.log" 2>&1 ||
    { tail -30 "$scratch/stock-build.log"; exit 1; }
fi
echo "stock image: $stock" >&2

now() { date +%s.%N; }

# boot_once NAME BASE BASE_FORMAT [qemu args…]: one boot on an overlay of
# BASE; prints "ready ssh" (seconds from qemu start, or - for ready).
boot_once() {
  local name=$1 base=$2 base_format=$3; shift 3
  local d=$scratch/$name
  rm -rf "$d"; mkdir -p "$d"
  qemu-img create -q -f qcow2 -F "$base_format" -b "$base" "$d/disk.qcow2"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local t0
  t0=$(now)
  qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
    -display none -vga none -nodefaults \
    -chardev "file,id=ser0,path=$d/serial.log" -serial chardev:ser0 \
    -drive "file=$d/disk.qcow2,if=virtio,format=qcow2,cache=unsafe" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:22" \
    -device virtio-net-pci,netdev=n0 -device virtio-rng-pci \
    -fw_cfg "name=opt/oxtree/authorized_keys,file=$key.pub" \
    "$@" >"$d/qemu.log" 2>&1 &
  qemu_pid=$!
  # Two watchers of their own, so that neither mark waits on the other
  # (an ssh attempt can take seconds): each writes its time when it sees
  # its mark.
  ( while ! grep -aq "$marker" "$d/serial.log" 2>/dev/null; do sleep 0.1; done
    now >"$d/ready.t" ) &
  local ready_w=$!
  ( while ! timeout 15 ssh -i "$key" -p "$port" -o StrictHostKeyChecking=no \
      -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o IdentitiesOnly=yes \
      -o ConnectTimeout=10 -o LogLevel=QUIET root@127.0.0.1 true </dev/null; do sleep 0.2; done
    now >"$d/ssh.t" ) &
  local ssh_w=$!
  while [ ! -e "$d/ready.t" ] || [ ! -e "$d/ssh.t" ]; do
    if ! kill -0 "$qemu_pid" 2>/dev/null || [ "$(echo "$(now) - $t0 > $TIMEOUT" | bc)" = 1 ]; then
      if [ -e "$d/ssh.t" ]; then break; fi
      kill "$ready_w" "$ssh_w" 2>/dev/null || true
      echo "$name: no ssh within ${TIMEOUT}s; serial console:" >&2
      tail -20 "$d/serial.log" >&2
      cat "$d/qemu.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  kill "$ready_w" "$ssh_w" 2>/dev/null || true
  wait "$ready_w" "$ssh_w" 2>/dev/null || true
  local ready=- ssh_t
  [ -e "$d/ready.t" ] && ready=$(echo "$(cat "$d/ready.t") - $t0" | bc)
  ssh_t=$(echo "$(cat "$d/ssh.t") - $t0" | bc)
  # Where the time went, by systemd's account (untimed, after both marks):
  # kernel (with the initramfs) and userspace, and the slowest units.
  timeout 120 ssh -i "$key" -p "$port" -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o IdentitiesOnly=yes \
    -o LogLevel=QUIET root@127.0.0.1 \
    'timeout 60 systemctl is-system-running --wait >/dev/null; uname -r; systemd-analyze | head -1; systemd-analyze blame | head -5' \
    </dev/null 2>/dev/null | sed "s/^/  $name: /" >&2 || true
  kill -9 "$qemu_pid" 2>/dev/null; wait "$qemu_pid" 2>/dev/null || true
  qemu_pid=
  [ "$ready" = - ] || ready=$(printf '%.1f' "$ready")
  echo "$ready $(printf '%.1f' "$ssh_t")"
}

# What "ready" is on the serial console: the stock image's marker unit,
# or, for an oxtree image, systemd reaching boot-complete.target (after
# oxtree's health checks), printed as "Boot Completion Check".
marker=OXTREE-BOOT-READY

boot_stock() {
  marker=OXTREE-BOOT-READY
  if [ "$stock_boot" = direct ]; then
    boot_once stock "$stock/disk.img" raw \
      -kernel "$stock/vmlinuz" -initrd "$stock/initrd.img" -append "root=/dev/vda1 rw console=ttyS0"
  else
    boot_once stock "$stock/disk.img" raw
  fi
}

# The hook for the oxtree image: a disk made by `oxtree to-disk`, booted
# through its own bootloader (SeaBIOS, or OVMF with --uefi).
boot_oxtree_image() {
  local disk=$1 fmt=$2
  local fw=()
  if [ "$uefi" = 1 ]; then
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$scratch/OVMF_VARS.fd"
    fw=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"
      -drive "if=pflash,format=raw,unit=1,file=$scratch/OVMF_VARS.fd")
  fi
  marker="Boot Completion Check"
  boot_once oxtree "$disk" "$fmt" "${fw[@]}"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

: >"$scratch/stock.times"; : >"$scratch/oxtree.times"
for i in $(seq "$runs"); do
  # Not $(…): qemu's pid must stay known to this shell's cleanup.
  boot_stock >"$scratch/r"
  echo "run $i stock:  ready/ssh $(cat "$scratch/r") s" >&2; cat "$scratch/r" >>"$scratch/stock.times"
  if [ -n "$image" ]; then
    boot_oxtree_image "$image" "$format" >"$scratch/r"
    echo "run $i oxtree: ready/ssh $(cat "$scratch/r") s" >&2; cat "$scratch/r" >>"$scratch/oxtree.times"
  fi
done

col() { awk -v c="$1" '$c != "-" { print $c }' "$2" | median; }
ratio() { if [ "$1" = - ] || [ "$2" = - ]; then echo -; else echo "scale=2; $1 / $2" | bc; fi; }
sr=$(col 1 "$scratch/stock.times"); ss=$(col 2 "$scratch/stock.times")
printf '%-22s %10s %10s\n' "median of $runs (s)" ready ssh
printf '%-22s %10s %10s\n' "stock ($stock_boot)" "$sr" "$ss"
if [ -n "$image" ]; then
  or=$(col 1 "$scratch/oxtree.times"); os=$(col 2 "$scratch/oxtree.times")
  printf '%-22s %10s %10s\n' "oxtree image" "$or" "$os"
  printf '%-22s %10s %10s\n' "ratio oxtree/stock" "$(ratio "$or" "$sr")" "$(ratio "$os" "$ss")"
fi
