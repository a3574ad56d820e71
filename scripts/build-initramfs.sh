#!/usr/bin/env bash
# Build the project's initramfs for Debian's Linux (cpio newc + gzip, by the workspace's
# `mkinitramfs`): static busybox from busybox-static (scripts/fetch-linux.sh fetches it),
# /init = linux/init.sh, /bin/mmap-churn and /bin/vector-state (linux/mmap-churn, linux/vector-state,
# linked statically with glibc from
# libc6-dev via -C target-feature=+crt-static), /lib/modules/xfs_vmap.ko (linux/xfs-vmap/, an
# out-of-tree module built against Debian's linux-headers-<release> of the fetched kernel, with
# the gcc Debian built that kernel with; scripts/install-deps.sh installs both).
#
# Usage: scripts/build-initramfs.sh [OUT.cpio.gz]     (default: .cache/linux/initramfs.cpio.gz)
# Progress goes to stderr; the last line of stdout is `initramfs=<absolute path>`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/.cache/linux/initramfs.cpio.gz}
die() { echo "build-initramfs: $*" >&2; exit 1; }

mkdir -p "$(dirname "$out")"
# Tests build it concurrently: one builder at a time (the module's build dir is shared).
exec 8>"$(dirname "$out")/.build-initramfs.lock"
flock 8

fetched=$(bash "$repo/scripts/fetch-linux.sh")
busybox=$(sed -n 's/^busybox=//p' <<<"$fetched")
[ -n "$busybox" ] || die "fetch-linux.sh gave no busybox path"
config=$(sed -n 's/^config=//p' <<<"$fetched")
# The kernel release, from the cache layout .cache/linux/<release>/config.
release=$(basename "$(dirname "$config")")
[[ $release =~ ^6\.1\.0-[0-9]+-amd64$ ]] || die "cannot tell the kernel release from $config"
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] ||
  die "static glibc missing: /usr/lib/x86_64-linux-gnu/libc.a (apt-get install libc6-dev)"

cd "$repo"
# Host settings must not leak into these builds (a test's cargo exports its own).
clean_env=(env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS
  -u CARGO_BUILD_TARGET -u RUSTC_WRAPPER -u CARGO_MAKEFLAGS)
# With an explicit --target the output lands in target/x86_64-unknown-linux-gnu/, apart from
# the host builds, and RUSTFLAGS reach only the target crates (not build scripts).
"${clean_env[@]}" RUSTFLAGS="-C target-feature=+crt-static" \
  CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=symbols \
  cargo build --release -q --target x86_64-unknown-linux-gnu -p mmap-churn -p vector-state >&2 ||
  die "building mmap-churn and vector-state (static) failed"
target=${CARGO_TARGET_DIR:-$repo/target}
churn=$target/x86_64-unknown-linux-gnu/release/mmap-churn
vector=$target/x86_64-unknown-linux-gnu/release/vector-state
"${clean_env[@]}" cargo build --release -q -p initramfs --bin mkinitramfs >&2 ||
  die "building mkinitramfs failed"

# The module, against the headers of exactly this kernel (vermagic and symbol CRCs must match).
kbuild=/usr/src/linux-headers-$release
[ -f "$kbuild/Makefile" ] ||
  die "$kbuild missing: apt-get install linux-headers-$release (scripts/install-deps.sh does, as root)"
# Debian's kernel records its compiler (CONFIG_CC_VERSION_TEXT "gcc-12 (Debian ...)").
cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*/\1/p' "$config")
command -v "$cc" >/dev/null || die "the kernel was built with $cc, which is not installed (apt-get install $cc)"
modsrc=$repo/linux/xfs-vmap
modbuild=$(dirname "$out")/xfs-vmap-build
rm -rf "$modbuild" && mkdir -p "$modbuild"
cp "$modsrc/Kbuild" "$modsrc/xfs_vmap.c" "$modbuild/"
if ! make -s -C "$kbuild" M="$modbuild" CC="$cc" modules >"$modbuild/build.log" 2>&1; then
  cat "$modbuild/build.log" >&2
  die "building the xfs_vmap module against $kbuild failed"
fi
# (kbuild's "Skipping BTF generation" note is expected: the headers have no vmlinux.)
grep -v "Skipping BTF" "$modbuild/build.log" >&2 || true

mkdir -p "$(dirname "$out")"
"$target/release/mkinitramfs" --busybox "$busybox" --init "$repo/linux/init.sh" \
  --program "$churn" --program "$vector" --module "$modbuild/xfs_vmap.ko" -o "$out" >&2
echo "initramfs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
