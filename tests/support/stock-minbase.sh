#!/bin/sh
# A stock Debian trixie minbase that boots in qemu: the baseline the
# oxtree image is compared with (bench/boot-vs-stock.sh, which caches it
# under /var/cache/oxtree-tests/fixtures). Trixie and linux-image-amd64,
# as in examples/host.toml: the same kernel and initramfs-tools settings
# as the oxtree image.
#
#   stock-minbase.sh OUT [APT_CACHE]
#
# Writes into OUT:
#   disk.img    a raw 4 GiB disk: an MBR table with one ext4 partition
#               (label root, made by `mkfs.ext4 -d`) and GRUB for BIOS,
#               installed with the host's grub-install as a Debian
#               installer would, and a grub.cfg with the same serial
#               console and timeout as oxtree's (no grub-mkconfig: one
#               entry)
#   vmlinuz, initrd.img   the image's kernel and initramfs, for a direct
#               kernel boot (-kernel -initrd -append root=/dev/vda1)
#   build.sh    a copy of this script (the bench finds its fixture by it)
#
# Inside: systemd, dbus (for logind, which powers off on the ACPI power
# button), linux-image-amd64, openssh-server, udev, iproute2;
# systemd-networkd with DHCP on every en* link; root's authorized_keys is
# copied at boot from qemu's fw_cfg `opt/oxtree/authorized_keys` (the VM
# harness passes its per-run public key there), and a unit ordered after
# multi-user.target and network-online.target (what an oxtree host waits
# for before its health checks) prints OXTREE-BOOT-READY on ttyS0.
# Its apt sources are those compose gives the host image (trixie, its
# updates and security), so both get the same kernel. Package downloads
# are cached in APT_CACHE (default
# /var/cache/oxtree-tests/apt-trixie, shared with the boot tests' compose).
set -eu
out=$1
cache=${2:-/var/cache/oxtree-tests/apt-trixie}
mkdir -p "$out" "$cache/partial"
root=$out/root

mmdebstrap --quiet --variant=minbase \
  --include=systemd,systemd-sysv,dbus,linux-image-amd64,openssh-server,udev,iproute2,kmod \
  --setup-hook="mkdir -p \"\$1\"/var/cache/apt/archives && mount --bind $cache \"\$1\"/var/cache/apt/archives" \
  --customize-hook='umount "$1"/var/cache/apt/archives' \
  trixie "$root" "deb http://deb.debian.org/debian trixie trixie-updates main" \
  "deb http://deb.debian.org/debian-security trixie-security main"

echo stock > "$root/etc/hostname"
# A fixed machine id: every boot of the image is the same (not a first boot).
echo 0b5e1c7a0d0e4f2a9c3b5d6e7f8a9b0c > "$root/etc/machine-id"
echo 'LABEL=root / ext4 rw,errors=remount-ro 0 1' > "$root/etc/fstab"

mkdir -p "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/20-wired.network" <<'EOF'
[Match]
Name=en*

[Network]
DHCP=yes
EOF
systemctl --root="$root" enable systemd-networkd.service

cat > "$root/usr/local/sbin/oxtree-authorized-keys" <<'EOF'
#!/bin/sh
# root's ssh key from qemu's fw_cfg (test images only).
modprobe qemu_fw_cfg 2>/dev/null
f=/sys/firmware/qemu_fw_cfg/by_name/opt/oxtree/authorized_keys/raw
[ -r "$f" ] || exit 0
install -d -m 700 /root/.ssh
cat "$f" > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
EOF
chmod 755 "$root/usr/local/sbin/oxtree-authorized-keys"
cat > "$root/etc/systemd/system/oxtree-authorized-keys.service" <<'EOF'
[Unit]
Description=root's ssh key from qemu fw_cfg
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/oxtree-authorized-keys

[Install]
WantedBy=multi-user.target
EOF
cat > "$root/etc/systemd/system/oxtree-boot-ready.service" <<'EOF'
[Unit]
Description=Print OXTREE-BOOT-READY on the serial console
After=multi-user.target network-online.target
Wants=network-online.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo OXTREE-BOOT-READY > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
EOF
systemctl --root="$root" enable oxtree-authorized-keys.service oxtree-boot-ready.service

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
mkdir -p "$root/boot/grub"
cat > "$root/boot/grub/grub.cfg" <<'EOF'
serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=1
menuentry 'Debian GNU/Linux (stock)' {
  search --no-floppy --label --set=root root
  linux /vmlinuz root=LABEL=root rw console=ttyS0,115200
  initrd /initrd.img
}
EOF

# The disk: one partition from 1 MiB (GRUB's core image goes in the gap
# before it, as on any BIOS/MBR Debian install), filled without a mount.
disk=$out/disk.img
rm -f "$disk"
truncate -s 4G "$disk"
echo 'start=2048, type=83, bootable' | sfdisk -q "$disk"
mkfs.ext4 -q -L root -E offset=1048576 -d "$root" "$disk" 4193280k
# grub-install wants the disk as a block device and its /boot mounted. A
# container's loop devices may not scan partitions, so the partition gets
# a loop device of its own (at its offset): grub-install then finds /boot
# on another device than the one it installs to and, as for any such
# install, has the core image find /boot by its filesystem UUID. All in a
# private mount namespace; the loop devices are detached at the end.
unshare -m --propagation private sh -euc '
  loop=$(losetup --show -f "$1")
  part=$(losetup --show -f -o 1048576 "$1")
  mnt=$(mktemp -d)
  trap "umount \"$mnt\" 2>/dev/null || true; rmdir \"$mnt\"; losetup -d $loop $part" EXIT
  mount "$part" "$mnt"
  grub-install --target=i386-pc --boot-directory="$mnt/boot" \
    --modules="part_msdos ext2" --no-floppy "$loop"
' sh "$disk"
rm -rf "$root"
cp "$0" "$out/build.sh"
