#!/usr/bin/env bash
# Build the project's initramfs for Debian's Linux (cpio newc + gzip, by the workspace's
# `mkinitramfs`): static busybox from busybox-static (scripts/fetch-linux.sh fetches it),
# /init = linux/init.sh, /bin/mmap-churn (linux/mmap-churn, linked statically with glibc from
# libc6-dev via -C target-feature=+crt-static).
#
# Usage: scripts/build-initramfs.sh [OUT.cpio.gz]     (default: .cache/linux/initramfs.cpio.gz)
# Progress goes to stderr; the last line of stdout is `initramfs=<absolute path>`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/.cache/linux/initramfs.cpio.gz}
die() { echo "build-initramfs: $*" >&2; exit 1; }

busybox=$(bash "$repo/scripts/fetch-linux.sh" | sed -n 's/^busybox=//p')
[ -n "$busybox" ] || die "fetch-linux.sh gave no busybox path"
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
  cargo build --release -q --target x86_64-unknown-linux-gnu -p mmap-churn >&2 ||
  die "building mmap-churn (static) failed"
target=${CARGO_TARGET_DIR:-$repo/target}
churn=$target/x86_64-unknown-linux-gnu/release/mmap-churn
"${clean_env[@]}" cargo build --release -q -p initramfs --bin mkinitramfs >&2 ||
  die "building mkinitramfs failed"

mkdir -p "$(dirname "$out")"
"$target/release/mkinitramfs" --busybox "$busybox" --init "$repo/linux/init.sh" \
  --program "$churn" -o "$out" >&2
echo "initramfs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
