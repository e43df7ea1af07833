#!/bin/sh
# A stock Debian bookworm minbase that boots in qemu: the baseline the VM
# harness is tested on (tests/vm_harness.rs) and that the oxtree image is
# compared with (bench/boot-vs-stock.sh).
#
#   stock-minbase.sh OUT [APT_CACHE]
#
# Writes into OUT:
#   disk.img    raw ext4 filesystem on the whole disk (no partition table;
#               boot it with root=/dev/vda), made by `mkfs.ext4 -d`: no mount
#   vmlinuz, initrd.img   the image's kernel and initramfs, for a direct
#               kernel boot (-kernel -initrd -append)
#   build.sh    a copy of this script (the bench finds its fixture by it)
#
# Inside: systemd, dbus (for logind, which powers off on the ACPI power
# button), linux-image-amd64, openssh-server, udev, iproute2;
# systemd-networkd with DHCP on every en* link; root's authorized_keys is
# copied at boot from qemu's fw_cfg `opt/oxtree/authorized_keys` (the VM
# harness passes its per-run public key there), and a unit ordered after
# multi-user.target prints OXTREE-BOOT-READY on ttyS0. Package downloads
# are cached in APT_CACHE (default /var/cache/oxtree-tests/apt, shared with
# the compose tests).
set -eu
out=$1
cache=${2:-/var/cache/oxtree-tests/apt}
mkdir -p "$out" "$cache/partial"
root=$out/root

mmdebstrap --quiet --variant=minbase \
  --include=systemd,systemd-sysv,dbus,linux-image-amd64,openssh-server,udev,iproute2,kmod \
  --setup-hook="mkdir -p \"\$1\"/var/cache/apt/archives && mount --bind $cache \"\$1\"/var/cache/apt/archives" \
  --customize-hook='umount "$1"/var/cache/apt/archives' \
  bookworm "$root" http://deb.debian.org/debian

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
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo OXTREE-BOOT-READY > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
EOF
systemctl --root="$root" enable oxtree-authorized-keys.service oxtree-boot-ready.service

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
mkfs.ext4 -q -L root -d "$root" "$out/disk.img" 4G
rm -rf "$root"
cp "$0" "$out/build.sh"
