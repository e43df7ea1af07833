#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests drive
# (the real ostree CLI, attr tools, gpg, python3's http.server, mkfs for
# loop-mounted sysroots, mmdebstrap, bubblewrap and lsinitramfs for compose
# and layering, nginx and openssl for HTTP/2 over TLS, and for the VM tests
# qemu-system-x86 from bookworm-backports (matching qemu-utils there), OVMF
# and the ssh client), then runs format, lint and all tests. Compose and layering tests download real Debian
# packages (cached in /var/cache/oxtree-tests).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ostree >/dev/null || need+=(ostree)
command -v getfattr >/dev/null || need+=(attr)
command -v tar >/dev/null || need+=(tar)
command -v gpg >/dev/null || need+=(gnupg)
command -v gpgconf >/dev/null || need+=(gpgconf)
command -v python3 >/dev/null || need+=(python3)
command -v unshare >/dev/null || need+=(util-linux)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v lsinitramfs >/dev/null || need+=(initramfs-tools-core)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/sbin/nginx ] || need+=(nginx)
command -v ssh >/dev/null || need+=(openssh-client)
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || need+=(ovmf)
# The VM tests (tests/support/vm.rs) boot images with qemu-system-x86_64;
# bookworm's qemu-utils may come from backports, and qemu-system-x86 must
# then come from there too.
need_bpo=()
command -v qemu-system-x86_64 >/dev/null || need_bpo+=(qemu-system-x86)
command -v qemu-img >/dev/null || need_bpo+=(qemu-utils)
has_bpo() { grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; }
if [ ${#need[@]} -gt 0 ] || [ ${#need_bpo[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing: ${need[*]} ${need_bpo[*]} (run as root or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ ${#need_bpo[@]} -gt 0 ] && (. /etc/os-release && [ "${VERSION_CODENAME:-}" = bookworm ]) && ! has_bpo; then
    cat >/etc/apt/sources.list.d/bookworm-backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt-get update -qq
  if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ ${#need_bpo[@]} -gt 0 ]; then
    if has_bpo; then
      apt-get install -y -qq -t bookworm-backports "${need_bpo[@]}" >/dev/null
    else
      apt-get install -y -qq "${need_bpo[@]}" >/dev/null
    fi
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole run (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
