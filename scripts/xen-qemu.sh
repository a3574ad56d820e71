#!/usr/bin/env bash
# Boot a Xen PV guest kernel as dom0 of real Xen 4.17 under QEMU (TCG) and print its console.
#
# Usage: scripts/xen-qemu.sh GUEST.elf "CMDLINE"     boot GUEST.elf with CMDLINE
#        scripts/xen-qemu.sh --fetch                  only fetch/cache Xen, print the xen.elf path
#
# Output (stdout): the guest's console lines as is; Xen's own lines ("(XEN) ..." and its banner)
# prefixed "xen| ".
# A last line "xen-qemu: <status> ..." goes to stderr. Exit status:
#   0 dom0 powered off        1 dom0 crashed           2 Xen panicked
#   3 timeout                 4 setup error (missing QEMU, Xen download failed, bad arguments)
#   5 QEMU exited before dom0 halted
#
# Environment:
#   XEN_QEMU_TIMEOUT  seconds before the run is killed (default 60)
#   XEN_ELF           use this hypervisor ELF instead of the cached Debian one (e.g. a debug
#                     build, docs/testing.md, which logs why each hypercall failed)
#   XEN_CACHE_DIR     cache for the Debian package (default <repo>/.cache/xen, git-ignored)
#   XEN_QEMU_SERIAL   also copy the raw serial log to this file
#   XEN_EXTRA_ARGS    extra words for Xen's command line
#   XEN_QEMU_MODULES  more multiboot modules after the guest, space-separated paths (dom0's
#                     initrd is the first: scripts/xen-qemu-linux.sh)
#   XEN_QEMU_CPU      QEMU -cpu model (default max; Linux needs max,-smap, docs/architecture.md)
#   XEN_QEMU_MEM      QEMU memory in MiB (default 512)
#   XEN_DOM0_MEM      Xen's dom0_mem (default 64M)
#
# A dom0 that powers off through ACPI (Linux: XENPF_enter_acpi_sleep) makes Xen print
# "Entering ACPI S5 state" and QEMU exit: that counts as powered off too.
#
# Safe to run concurrently: every run has its own temp dir; the fetch is serialised by flock.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${XEN_CACHE_DIR:-$repo/.cache/xen}
timeout_s=${XEN_QEMU_TIMEOUT:-60}
xen_pkg=xen-hypervisor-4.17-amd64

die() { echo "xen-qemu: setup error: $*" >&2; exit 4; }

# Make sure qemu-system-x86_64 exists (apt-get it when we may).
ensure_qemu() {
  command -v qemu-system-x86_64 >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "xen-qemu: installing qemu-system-x86" >&2
    (apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; }) ||
      die "could not install qemu-system-x86"
  fi
  command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
}

# Print the path of the cached hypervisor ELF, downloading Debian's package once.
ensure_xen() {
  if [ -n "${XEN_ELF:-}" ]; then
    [ -r "$XEN_ELF" ] || die "XEN_ELF=$XEN_ELF is not readable"
    echo "$XEN_ELF"; return
  fi
  mkdir -p "$cache" || die "cannot create $cache"
  local elf=$cache/xen.elf
  if [ ! -s "$elf" ]; then
    exec 9>"$cache/.lock"
    flock 9
    if [ ! -s "$elf" ]; then
      local work; work=$(mktemp -d "$cache/fetch.XXXXXX")
      echo "xen-qemu: fetching $xen_pkg into $cache" >&2
      (cd "$work" && { apt-get download -qq "$xen_pkg" >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null && apt-get download -qq "$xen_pkg" >/dev/null; }; }) ||
        { rm -rf "$work"; die "apt-get download $xen_pkg failed"; }
      local deb; deb=$(ls "$work"/*.deb)
      dpkg-deb -x "$deb" "$work/x" || { rm -rf "$work"; die "dpkg-deb -x $deb failed"; }
      local gz; gz=$(ls "$work"/x/boot/xen-4.17-amd64.gz 2>/dev/null) ||
        { rm -rf "$work"; die "boot/xen-4.17-amd64.gz not in $deb"; }
      zcat "$gz" >"$work/xen.elf" || { rm -rf "$work"; die "zcat $gz failed"; }
      cp "$work"/x/boot/xen-4.17-amd64.config "$cache/xen.config" 2>/dev/null || true
      basename "$deb" >"$cache/VERSION"
      mv "$work/xen.elf" "$elf"   # atomic: concurrent readers see all or nothing
      rm -rf "$work"
    fi
    flock -u 9
  fi
  echo "$elf"
}

if [ "${1:-}" = "--fetch" ]; then
  ensure_qemu
  ensure_xen
  exit 0
fi

[ $# -eq 2 ] || die "usage: $0 GUEST.elf \"CMDLINE\"  |  $0 --fetch"
guest=$1
cmdline=$2
[ -r "$guest" ] || die "guest ELF $guest not readable"
case "$timeout_s" in ''|*[!0-9]*) die "XEN_QEMU_TIMEOUT must be whole seconds";; esac
ensure_qemu
xen=$(ensure_xen)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/xen-qemu.XXXXXX")
qpid=
cleanup() {
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill "$qpid" 2>/dev/null || true
    wait "$qpid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# QEMU's multiboot loader splits -initrd at commas (",," escapes one) and passes the words after
# the file name as the module's command line; Xen hands that to dom0 in start_info.cmd_line.
# A private copy keeps odd characters of the caller's path out of it.
cp "$guest" "$tmp/guest.elf"
initrd="$tmp/guest.elf ${cmdline//,/,,}"
n=0
for m in ${XEN_QEMU_MODULES:-}; do
  [ -r "$m" ] || die "module $m not readable"
  n=$((n + 1)); cp "$m" "$tmp/module$n"
  initrd="$initrd,$tmp/module$n"
done
serial=$tmp/serial.log
: >"$serial"

start=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -cpu "${XEN_QEMU_CPU:-max}" -smp 1 -m "${XEN_QEMU_MEM:-512}" \
  -display none -monitor none \
  -serial "file:$serial" -no-reboot -kernel "$xen" \
  -append "console=com1 com1=115200 loglvl=all guest_loglvl=all dom0_mem=${XEN_DOM0_MEM:-64M} noreboot ${XEN_EXTRA_ARGS:-}" \
  -initrd "$initrd" </dev/null >"$tmp/qemu.out" 2>&1 &
qpid=$!

# Poll the serial log for an end marker. Xen keeps running after dom0 halts, so we kill QEMU.
status=timeout
deadline=$(($(date +%s) + timeout_s))
panic_seen_at=
while :; do
  if ! kill -0 "$qpid" 2>/dev/null; then
    if grep -q "Entering ACPI S5 state" "$serial"; then status=halted; else status=qemu-exited; fi
    break
  fi
  if grep -q "Hardware Dom0 halted" "$serial"; then status=halted; break; fi
  if grep -q "Hardware Dom0 crashed" "$serial"; then status=crashed; break; fi
  if grep -q "Panic on CPU" "$serial"; then
    # Let Xen finish printing the panic box before we stop it.
    if grep -qE "Manual reset required|Reboot in five seconds" "$serial"; then status=panic; break; fi
    if [ -z "$panic_seen_at" ]; then panic_seen_at=$(date +%s); fi
    if [ $(($(date +%s) - panic_seen_at)) -ge 2 ]; then status=panic; break; fi
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then status=timeout; break; fi
  sleep 0.05
done
# Give the serial file a moment to catch the rest of the line that matched.
sleep 0.05
if kill -0 "$qpid" 2>/dev/null; then kill "$qpid" 2>/dev/null || true; fi
wait "$qpid" 2>/dev/null || true
qpid=
end=$(date +%s.%N)

[ -n "${XEN_QEMU_SERIAL:-}" ] && cp "$serial" "$XEN_QEMU_SERIAL"
# Xen's lines start with "(XEN)"; the dom0 console (console_io) is written unprefixed. Xen's
# banner (unprefixed) comes before "*** Serial input to DOM0", i.e. before dom0 runs.
tr -d '\r' <"$serial" | awk '
  /^\(XEN\)/ || !dom0 { print "xen| " $0; if (/Serial input to DOM0/) dom0 = 1; next }
  { print }'

secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
case $status in
  halted) echo "xen-qemu: dom0 halted (${secs}s)" >&2; exit 0 ;;
  crashed) echo "xen-qemu: dom0 CRASHED (${secs}s)" >&2; exit 1 ;;
  panic) echo "xen-qemu: Xen PANICKED (${secs}s)" >&2; exit 2 ;;
  timeout) echo "xen-qemu: TIMEOUT after ${timeout_s}s" >&2; exit 3 ;;
  *) echo "xen-qemu: QEMU exited before dom0 halted (${secs}s):" >&2
     sed 's/^/qemu| /' "$tmp/qemu.out" >&2; exit 5 ;;
esac
