#!/usr/bin/env bash
# Benchmarks and the report (issue 12). Prints figures and ratios; asserts nothing.
#
# 1. The validator, natively (cargo bench -p pagetable-validator --bench validate, criterion):
#    pin validation of dense address spaces vs a raw read of the same table memory and a naive
#    type-count loop, unpin, batched mmu_update. Its figures: ${CARGO_TARGET_DIR:-target}/bench/
#    validator.json (when the bench writes it).
# 2. The VMM's cost per exit: scripts/bench-exits.sh, when it exists (writes vmm_exits.json).
# 3. The guest workloads: every `matrix` row of guest/scenarios.manifest (xfs-btree-walk
#    blocks=1700 per variant among them) on our VMM and on real Xen 4.17 in QEMU, one run at a
#    time, 3 repetitions: wall times, guest-only times, exits and hypercalls (bench-report
#    guest, writes guest.json; a table on stdout).
# 4. The report: bench/results.json, bench/REPORT.md and bench/*.svg from whatever of
#    1-3 exists under ${CARGO_TARGET_DIR:-target}/bench/ (bench-report render; a missing part
#    is named in one line, never invented).
#
# (--linux) Debian's stock kernel with the project's initramfs, booted to /init and powered
# off: wall time on the VMM and on real Xen 4.17 in QEMU, side by side (no report).
#
# Usage: scripts/bench.sh [--validator-only | --guest-only | --report-only | --linux]
#                         [blocks=N] [reps=N]
#   --validator-only  1 (and 2), then the report     --guest-only  3, then the report
#   --report-only     only 4, from the last runs     blocks=N      xfs-btree-walk with N blocks
#   reps=N            repetitions per scenario and hypervisor (default 3)
# Environment: VALIDATOR_BENCH_ARGS passes criterion options, e.g. "--measurement-time 5".
# Takes several minutes (real Xen boots in QEMU ~1.5 s per run); needs /dev/kvm and QEMU
# (Xen is fetched by scripts/xen-qemu.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

what=all
guest_args=()
for a in "$@"; do
  case "$a" in
    --validator-only) what=validator ;;
    --guest-only) what=guest ;;
    --report-only) what=report ;;
    --linux) what=linux ;;
    blocks=*) guest_args+=(--blocks "${a#blocks=}") ;;
    reps=*) guest_args+=(--reps "${a#reps=}") ;;
    *) echo "usage: $0 [--validator-only | --guest-only | --report-only | --linux] [blocks=N] [reps=N]" >&2
       exit 2 ;;
  esac
done

if [[ $what == linux ]]; then
  echo "== Debian's Linux to /init and poweroff: vmm vs real Xen 4.17 in QEMU =="
  eval "$(bash scripts/fetch-linux.sh | grep -E '^(vmlinuz)=')"
  bash scripts/build-initramfs.sh >/dev/null
  initrd=.cache/linux/initramfs.cpio.gz
  cargo build -q --release -p vmm
  vmm=${CARGO_TARGET_DIR:-target}/release/vmm
  t0=$(date +%s.%N)
  "$vmm" run -q --mem 256 --initrd "$initrd" --cmdline "console=hvc0 earlyprintk=xen" "$vmlinuz" \
    | grep -m1 'XENKVM-INIT .*result=' || true
  t1=$(date +%s.%N)
  bash scripts/xen-qemu-linux.sh "$vmlinuz" "$initrd" 2>/dev/null | grep -m1 'XENKVM-INIT .*result=' || true
  t2=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    printf "wall: vmm %.1f s, real Xen in QEMU %.1f s, ratio xen/vmm %.2f\n", b - a, c - b, (c - b) / (b - a) }'
  exit 0
fi

if [[ $what == all || $what == validator ]]; then
  # Criterion, short configuration (~30 s); per benchmark its estimate [low mid high],
  # then the summary: best/median per space, ratios pin/raw read, pin/naive loop,
  # unpin/pin, ns per mmu_update entry, frame-table bytes per frame.
  echo "== validator (cargo bench -p pagetable-validator --bench validate) =="
  # shellcheck disable=SC2086
  cargo bench -q -p pagetable-validator --bench validate -- ${VALIDATOR_BENCH_ARGS:-} 2>&1 |
    grep -E '^[a-z_]+/[a-z_]+ +time:|^summary|^ms:|^space|^(rw|ro)_|^mmu_update |^frame table'
  if [[ -f scripts/bench-exits.sh ]]; then
    echo
    echo "== VMM cost per exit (scripts/bench-exits.sh) =="
    bash scripts/bench-exits.sh
  fi
fi

cargo build -q --release -p vmm -p bench-report
report=${CARGO_TARGET_DIR:-target}/release/bench-report
if [[ $what == all || $what == guest ]]; then
  echo
  echo "== guest workloads: our VMM (KVM) vs real Xen 4.17 in QEMU, every matrix scenario =="
  "$report" guest "${guest_args[@]}"
fi

echo
echo "== report =="
"$report" render --out bench
