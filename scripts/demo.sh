#!/usr/bin/env bash
# The demo, in two runs of the embedded guest under KVM:
#  1. enforce (Xen's behaviour): XFS's lazy vmap purge is caught at pin time with the stale
#     mapping named (vmalloc VA, L1 slot), then the vmap_pages fix passes — the README's
#     first command;
#  2. audit: the same bug with the pin allowed, so one run lists every offending frame.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p vmm
vmm=${CARGO_TARGET_DIR:-target}/release/vmm

echo "=== 1/2: vmm run (enforce, default demo) ==="
"$vmm" run
echo
echo "=== 2/2: vmm run --policy audit --cmdline \"scenario=xfs-vmap variant=lazy\" ==="
"$vmm" run --policy audit --cmdline "scenario=xfs-vmap variant=lazy" || true
