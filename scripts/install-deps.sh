#!/usr/bin/env bash
# Install what oxtree's tests and demos drive, on Debian (as root): the
# real ostree CLI and its test suite's tools, gpg, mmdebstrap and bubblewrap
# for compose and layering, nginx and openssl for HTTP/2, and for the VM
# tests and the boot demo qemu-system-x86 (from bookworm-backports on
# bookworm, to match qemu-utils there), OVMF, GRUB's BIOS and EFI images,
# dosfstools/mtools for the ESP, the ssh client, netcat and busybox-static;
# curl for the agent tests (TLS client certificates, another uid on the
# socket); etcd (server and etcdctl) for the FleetLock tests, and protoc,
# which the etcd client crate needs at build time; for the container tests
# a real registry (docker-registry), skopeo, podman and umoci, and the
# headers the sigstore-rs signing peer links (tests/peers/sigstore-sign).
# Installs only what is missing; does nothing when all is there.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have ostree || need+=(ostree)
[ -d /usr/libexec/installed-tests/libostree ] || need+=(ostree-tests)
have parallel || need+=(parallel)
have objcopy || need+=(binutils)
have cpio || need+=(cpio)
have getfattr || need+=(attr)
have tar || need+=(tar)
have gpg || need+=(gnupg)
have gpgconf || need+=(gpgconf)
have python3 || need+=(python3)
have unshare || need+=(util-linux)
have sfdisk || need+=(fdisk)
have mkfs.ext4 || need+=(e2fsprogs)
have mmdebstrap || need+=(mmdebstrap)
have bwrap || need+=(bubblewrap)
have lsinitramfs || need+=(initramfs-tools-core)
have openssl || need+=(openssl)
have curl || need+=(curl)
have nsenter || need+=(util-linux)
have setpriv || need+=(util-linux)
[ -x /usr/sbin/nginx ] || need+=(nginx)
have ssh || need+=(openssh-client)
have nc || need+=(netcat-openbsd)
have grub-mkimage || need+=(grub-common)
[ -f /usr/lib/grub/i386-pc/boot.img ] || need+=(grub-pc-bin)
[ -d /usr/lib/grub/x86_64-efi ] || need+=(grub-efi-amd64-bin)
have mkfs.fat || need+=(dosfstools)
have mcopy || need+=(mtools)
have dpkg-scanpackages || need+=(dpkg-dev)
[ -x /bin/busybox ] || need+=(busybox-static)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || need+=(ovmf)
have etcd || need+=(etcd-server)
have etcdctl || need+=(etcd-client)
have protoc || need+=(protobuf-compiler)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
have skopeo || need+=(skopeo)
have podman || need+=(podman)
have umoci || need+=(umoci)
have pkg-config || need+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
need_bpo=()
have qemu-system-x86_64 || need_bpo+=(qemu-system-x86)
have qemu-img || need_bpo+=(qemu-utils)
[ ${#need[@]} -eq 0 ] && [ ${#need_bpo[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing: ${need[*]} ${need_bpo[*]} (run as root or install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
has_bpo() { grep -rqs -- '-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; }
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ ${#need_bpo[@]} -gt 0 ] && [ "$codename" = bookworm ] && ! has_bpo; then
  # The same mirror as the system's own Debian entry, with backports.
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  if [ -n "$uri" ]; then
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" >/etc/apt/sources.list.d/bookworm-backports.sources
  fi
fi
apt-get update -qq
if [ ${#need[@]} -gt 0 ]; then
  apt-get install -y -qq "${need[@]}" >/dev/null
  # The tests start their own etcd on free ports; the package's service
  # (started where systemd runs) is not wanted.
  if [[ " ${need[*]} " == *" etcd-server "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now etcd.service >/dev/null 2>&1 || true
  fi
  # Likewise the registry: the tests start their own on a free port.
  if [[ " ${need[*]} " == *" docker-registry "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  fi
fi
if [ ${#need_bpo[@]} -gt 0 ]; then
  if has_bpo; then
    apt-get install -y -qq -t "$codename-backports" "${need_bpo[@]}" >/dev/null
  else
    apt-get install -y -qq "${need_bpo[@]}" >/dev/null
  fi
fi
