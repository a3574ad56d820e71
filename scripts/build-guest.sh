#!/usr/bin/env bash
# Build the guest kernel (release) from inside guest/, its own cargo workspace, with the
# caller's cargo/rustc flags cleared (they would leak host settings into the bare-metal build).
# Progress goes to stderr; the last line of stdout is the absolute path of the guest ELF.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo/guest"
env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS -u CARGO_TARGET_DIR -u CARGO_BUILD_TARGET \
  -u CARGO_BUILD_RUSTFLAGS -u RUSTC_WRAPPER -u CARGO_MAKEFLAGS \
  cargo build --release >&2
echo "$repo/guest/target/release/xenkvm-guest"
