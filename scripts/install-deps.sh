#!/usr/bin/env bash
# Installs what the tests need beyond Rust: Debian's libxen-dev (the ABI layout test compiles
# against Xen's public headers), qemu-system-x86 and the xen-hypervisor-4.17-amd64 package
# (real Xen 4.17 for the conformance tests, cached in .cache/xen by scripts/xen-qemu.sh),
# Debian's Linux kernel and busybox (scripts/fetch-linux.sh), and that kernel's
# linux-headers-<release> with the gcc it was built with, for the xfs_vmap module
# (linux/xfs-vmap/, built into the initramfs by scripts/build-initramfs.sh).
# Idempotent: installs only what is missing. Needs root (or everything already installed).
set -euo pipefail
cd "$(dirname "$0")/.."

# The kernel release fetch-linux.sh resolves (it runs apt-get update itself when needed).
config=$(bash scripts/fetch-linux.sh | sed -n 's/^config=//p')
release=$(basename "$(dirname "$config")")
[[ $release =~ ^6\.1\.0-[0-9]+-amd64$ ]] || { echo "install-deps: fetch-linux.sh gave no kernel release" >&2; exit 1; }
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$config")

missing=()
for p in libxen-dev qemu-system-x86 "linux-headers-$release" "$cc" make; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "install-deps: missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v qemu-system-x86_64 >/dev/null || { echo "install-deps: qemu-system-x86_64 missing after install" >&2; exit 1; }
[ -f "/usr/src/linux-headers-$release/Makefile" ] || { echo "install-deps: linux-headers-$release missing after install" >&2; exit 1; }
[ -f /usr/include/xen/xen.h ] || { echo "install-deps: /usr/include/xen/xen.h missing after install" >&2; exit 1; }
bash scripts/xen-qemu.sh --fetch >/dev/null || { echo "install-deps: fetching Xen 4.17 failed" >&2; exit 1; }
