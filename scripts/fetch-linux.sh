#!/usr/bin/env bash
# Fetch Debian 12's stock Linux kernel and a static busybox with `apt-get download` (no other
# network) and cache them, with the files extracted from them, under <repo>/.cache/linux/
# (git-ignored). Idempotent: a second run finds everything cached and only prints the paths.
#
# Usage: scripts/fetch-linux.sh
#
# Output (stdout), one KEY=PATH line each (absolute paths):
#   vmlinuz=...   the bzImage (boot/vmlinuz-<release>; its payload is an XZ-compressed ELF)
#   vmlinux=...   that ELF, extracted from the bzImage (Xen PV notes in PT_NOTE)
#   config=...    the kernel's build config (boot/config-<release>)
#   busybox=...   /bin/busybox from busybox-static (a static x86_64 ELF)
#   kernel_deb=... busybox_deb=...   the cached .debs
# Progress and errors go to stderr. Exit status 0 on success, 1 when a package cannot be had
# (with the reason), 2 on a bad environment (no apt-get/dpkg-deb, not root for a first fetch).
#
# The kernel is the one linux-image-amd64 depends on now (linux-image-6.1.0-N-amd64, never the
# -cloud flavour, which cannot be dom0). LINUX_PKG=linux-image-6.1.0-57-amd64 pins a name.
# LINUX_CACHE_DIR overrides the cache directory. Safe to run concurrently (flock).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${LINUX_CACHE_DIR:-$repo/.cache/linux}

die() { echo "fetch-linux: $*" >&2; exit 1; }
die_env() { echo "fetch-linux: $*" >&2; exit 2; }

command -v apt-get >/dev/null || die_env "apt-get not found: this script needs Debian 12 (bookworm)"
command -v dpkg-deb >/dev/null || die_env "dpkg-deb not found"
mkdir -p "$cache/debs" || die_env "cannot create $cache"

exec 9>"$cache/.lock"
flock 9

# apt's package lists: a fresh container has none, and apt-cache/apt-get download need them.
lists_updated=
update_lists() {
  [ -n "$lists_updated" ] && return
  [ "$(id -u)" = 0 ] || die_env "apt's package lists are missing or stale and updating them needs root (run as root)"
  echo "fetch-linux: apt-get update" >&2
  apt-get update -qq >&2 || die "apt-get update failed (no route to the Debian archive?)"
  lists_updated=1
}

# The kernel package the metapackage depends on, e.g. linux-image-6.1.0-57-amd64.
resolve_kernel() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\.0-[0-9]+-amd64$/ { print $2; exit }'
}

kpkg=${LINUX_PKG:-}
if [ -z "$kpkg" ]; then
  kpkg=$(resolve_kernel)
  if [ -z "$kpkg" ]; then
    update_lists
    kpkg=$(resolve_kernel)
  fi
  [ -n "$kpkg" ] || die "cannot resolve the kernel package: linux-image-amd64 does not depend on a linux-image-6.1.0-N-amd64 (is this Debian 12 with bookworm/bookworm-security in sources?)"
fi
case $kpkg in
  *cloud*) die "$kpkg is the -cloud flavour (no CONFIG_XEN_DOM0); use linux-image-6.1.0-N-amd64" ;;
  linux-image-6.1.0-*-amd64) ;;
  *) die "unexpected kernel package name $kpkg (want linux-image-6.1.0-N-amd64)" ;;
esac
release=${kpkg#linux-image-}

# Download PKG into debs/ unless a .deb of it is cached; print the .deb's path.
fetch_deb() {
  local pkg=$1 deb
  deb=$(ls "$cache"/debs/"${pkg}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$deb" ]; then
    echo "fetch-linux: apt-get download $pkg" >&2
    local work; work=$(mktemp -d "$cache/debs/dl.XXXXXX")
    if ! (cd "$work" && apt-get download -qq "$pkg" >/dev/null 2>"$work/err"); then
      update_lists
      (cd "$work" && apt-get download -qq "$pkg" >/dev/null 2>"$work/err") || {
        local why; why=$(tr '\n' ' ' <"$work/err"); rm -rf "$work"
        die "apt-get download $pkg failed: $why"; }
    fi
    deb=$(ls "$work"/*.deb 2>/dev/null | head -n 1) || true
    [ -n "$deb" ] || { rm -rf "$work"; die "apt-get download $pkg produced no .deb"; }
    mv "$deb" "$cache/debs/" && deb=$cache/debs/$(basename "$deb")
    rm -rf "$work"
  fi
  echo "$deb"
}

# Extract the members MEMBER... of DEB into DIR (only those: the kernel .deb is mostly modules).
extract() {
  local deb=$1 dir=$2; shift 2
  mkdir -p "$dir"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" "$@" ||
    die "cannot extract $* from $deb"
}

kdeb=$(fetch_deb "$kpkg")
bdeb=$(fetch_deb busybox-static)
kdir=$cache/$release
bdir=$cache/busybox

if [ ! -s "$kdir/vmlinuz" ] || [ ! -s "$kdir/config" ]; then
  tmp=$(mktemp -d "$cache/x.XXXXXX")
  extract "$kdeb" "$tmp" "./boot/vmlinuz-$release" "./boot/config-$release"
  mkdir -p "$kdir"
  mv "$tmp/boot/config-$release" "$kdir/config"
  mv "$tmp/boot/vmlinuz-$release" "$kdir/vmlinuz"
  rm -rf "$tmp"
fi

# The bzImage's payload (boot protocol >= 2.08): setup_sects at 0x1f1, payload_offset at 0x248,
# payload_length at 0x24c; the protected-mode part starts at (setup_sects + 1) * 512. The
# payload is an XZ stream followed by 4 bytes of decompressed size.
if [ ! -s "$kdir/vmlinux" ]; then
  command -v xz >/dev/null || {
    [ "$(id -u)" = 0 ] || die_env "xz not found (apt-get install xz-utils)"
    update_lists
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xz-utils >/dev/null ||
      die "could not install xz-utils"; }
  z=$kdir/vmlinuz
  [ "$(dd if="$z" bs=1 skip=$((0x202)) count=4 status=none)" = HdrS ] ||
    die "$z is not a bzImage (no HdrS at 0x202)"
  u8() { od -An -tu1 -j "$1" -N 1 "$z" | tr -d ' '; }
  u32() { od -An -tu4 -j "$1" -N 4 "$z" | tr -d ' '; }
  setup_sects=$(u8 $((0x1f1)))
  poff=$(u32 $((0x248)))
  plen=$(u32 $((0x24c)))
  start=$(((setup_sects + 1) * 512 + poff))
  dd if="$z" iflag=skip_bytes,count_bytes skip="$start" count="$plen" bs=1M status=none |
    xz -dc --single-stream >"$kdir/vmlinux.tmp" ||
    { rm -f "$kdir/vmlinux.tmp"; die "cannot decompress the XZ payload of $z"; }
  [ "$(head -c 4 "$kdir/vmlinux.tmp")" = $'\x7fELF' ] ||
    { rm -f "$kdir/vmlinux.tmp"; die "the payload of $z is not an ELF"; }
  mv "$kdir/vmlinux.tmp" "$kdir/vmlinux"
fi

if [ ! -s "$bdir/busybox" ]; then
  tmp=$(mktemp -d "$cache/x.XXXXXX")
  extract "$bdeb" "$tmp" ./bin/busybox
  mkdir -p "$bdir"
  mv "$tmp/bin/busybox" "$bdir/busybox"
  rm -rf "$tmp"
fi

{
  echo "$(basename "$kdeb")"
  echo "$(basename "$bdeb")"
} >"$cache/VERSIONS"
flock -u 9

echo "vmlinuz=$kdir/vmlinuz"
echo "vmlinux=$kdir/vmlinux"
echo "config=$kdir/config"
echo "busybox=$bdir/busybox"
echo "kernel_deb=$kdeb"
echo "busybox_deb=$bdeb"
