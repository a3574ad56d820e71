#!/usr/bin/env bash
# Boot Debian's Linux with the project's initramfs as dom0 of real Xen 4.17 under QEMU (TCG),
# through scripts/xen-qemu.sh (same output format and exit statuses; see there).
#
# Usage: scripts/xen-qemu-linux.sh [KERNEL [INITRD]]
#   KERNEL  a bzImage or the extracted ELF (default: the vmlinuz scripts/fetch-linux.sh fetches)
#   INITRD  dom0's first module (default: scripts/build-initramfs.sh's initramfs)
#
# Environment (besides xen-qemu.sh's):
#   LINUX_CMDLINE     the kernel's command line (default: console=hvc0 earlyprintk=xen)
#   XEN_QEMU_TIMEOUT  default 300 s here (a boot takes ~10-20 s of TCG time)
#   XEN_DOM0_MEM      default 256M;  XEN_QEMU_MEM default 512;  XEN_QEMU_CPU default max,-smap
#     (with plain -cpu max dom0 dies at its first iretq: QEMU 7.2 and SMAP, docs/architecture.md)
#
# The initramfs's /init ends with one line `XENKVM-INIT ... result=PASS|FAIL`, then powers off
# (Xen: "Entering ACPI S5 state", QEMU exits; reported as dom0 halted, status 0).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)

kernel=${1:-}
initrd=${2:-}
if [ -z "$kernel" ]; then
  kernel=$(bash "$repo/scripts/fetch-linux.sh" | sed -n 's/^vmlinuz=//p')
  [ -n "$kernel" ] || { echo "xen-qemu-linux: setup error: no kernel from fetch-linux.sh" >&2; exit 4; }
fi
if [ -z "$initrd" ]; then
  initrd=$(bash "$repo/scripts/build-initramfs.sh" | sed -n 's/^initramfs=//p')
  [ -n "$initrd" ] || { echo "xen-qemu-linux: setup error: build-initramfs.sh failed" >&2; exit 4; }
fi
[ -r "$initrd" ] || { echo "xen-qemu-linux: setup error: initrd $initrd not readable" >&2; exit 4; }
case $initrd in *" "*) echo "xen-qemu-linux: setup error: initrd path has a space" >&2; exit 4 ;; esac

export XEN_QEMU_MODULES=$initrd
export XEN_QEMU_CPU=${XEN_QEMU_CPU:-max,-smap}
export XEN_QEMU_MEM=${XEN_QEMU_MEM:-512}
export XEN_DOM0_MEM=${XEN_DOM0_MEM:-256M}
export XEN_QEMU_TIMEOUT=${XEN_QEMU_TIMEOUT:-300}
exec bash "$repo/scripts/xen-qemu.sh" "$kernel" "${LINUX_CMDLINE:-console=hvc0 earlyprintk=xen}"
