#!/usr/bin/env bash
# Benchmarks. Prints figures and ratios; asserts nothing (targets live in the issues).
#
# 1. The validator, natively: pin validation of a dense address space vs a raw read of the
#    same table memory, and batched mmu_update (cargo bench, pagetable-validator/benches).
# 2. The guest workload xfs-btree-walk under the VMM, per variant: guest-side work counts
#    and VMM-side hypercalls, exits and TLB flushes. Guest code is emulated on hosts without
#    VT-x/AMD-V, so the counts and their ratios are the figures that carry across machines;
#    wall time is printed for this machine only.
#
# 3. (--linux) Debian's stock kernel with the project's initramfs, booted to /init and
#    powered off: wall time on the VMM and on real Xen 4.17 in QEMU, side by side.
#
# Usage: scripts/bench.sh [--validator-only | --guest-only | --linux] [blocks=N]
set -euo pipefail
cd "$(dirname "$0")/.."

what=all
blocks=""
for a in "$@"; do
  case "$a" in
    --validator-only) what=validator ;;
    --guest-only) what=guest ;;
    --linux) what=linux ;;
    blocks=*) blocks=" $a" ;;
    *) echo "usage: $0 [--validator-only | --guest-only | --linux] [blocks=N]" >&2; exit 2 ;;
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

if [[ $what != guest ]]; then
  # Criterion, short configuration (~30 s); per benchmark its estimate [low mid high],
  # then the summary: best/median per space, ratios pin/raw read, pin/naive loop,
  # unpin/pin, ns per mmu_update entry, frame-table bytes per frame.
  # VALIDATOR_BENCH_ARGS passes criterion options, e.g. "--measurement-time 5".
  echo "== validator (cargo bench -p pagetable-validator --bench validate) =="
  # shellcheck disable=SC2086
  cargo bench -q -p pagetable-validator --bench validate -- ${VALIDATOR_BENCH_ARGS:-} 2>&1 |
    grep -E '^[a-z_]+/[a-z_]+ +time:|^summary|^ms:|^space|^(rw|ro)_|^mmu_update |^frame table'
fi

[[ $what == validator ]] && exit 0

echo
echo "== guest workload: xfs-btree-walk under vmm (KVM) =="
cargo build -q --release -p vmm
vmm=${CARGO_TARGET_DIR:-target}/release/vmm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

field() { # field NAME FILE: value of NAME=... on the first line that has it
  grep -o -m1 "\b$1=[0-9.]*" "$2" | head -n1 | cut -d= -f2
}

printf '%-11s %8s %9s %9s %8s %9s %8s %10s %9s\n' variant visits g_hcalls g_flushes purges vmm_hcalls exits cr3_reload wall_s
declare -A hc fl ex
for v in eager lazy vmap-pages; do
  out=$tmp/$v.out err=$tmp/$v.err
  if ! "$vmm" run --cmdline "scenario=xfs-btree-walk variant=$v$blocks" >"$out" 2>"$err"; then
    echo "vmm run failed for variant $v:" >&2; tail -20 "$err" >&2; exit 1
  fi
  grep -q "VERDICT .* PASS" "$out" || { echo "variant $v did not pass:" >&2; tail -5 "$out" >&2; exit 1; }
  visits=$(field visits "$out")
  ghc=$(field vmap_hypercalls "$out")
  gfl=$(field flush_hypercalls "$out")
  purges=$(field purges "$out")
  vhc=$(grep -o -m1 '^hypercalls: [0-9]*' "$err" | awk '{print $2}')
  exits=$(grep -o -m1 'exits=[0-9]*' "$err" | cut -d= -f2)
  cr3=$(field cr3_reloads "$err")
  wall=$(grep -o -m1 'wall time=[0-9.]*' "$err" | cut -d= -f2)
  printf '%-11s %8s %9s %9s %8s %9s %8s %10s %9s\n' "$v" "$visits" "$ghc" "$gfl" "$purges" "$vhc" "$exits" "$cr3" "$wall"
  hc[$v]=$vhc fl[$v]=$gfl ex[$v]=$exits
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "inf"; else printf "%.2f", a / b }'; }
echo
echo "ratios eager/lazy:       hypercalls $(ratio "${hc[eager]}" "${hc[lazy]}")  guest flushes $(ratio "${fl[eager]}" "${fl[lazy]}")  exits $(ratio "${ex[eager]}" "${ex[lazy]}")"
echo "ratios eager/vmap-pages: hypercalls $(ratio "${hc[eager]}" "${hc[vmap-pages]}")  guest flushes $(ratio "${fl[eager]}" "${fl[vmap-pages]}")  exits $(ratio "${ex[eager]}" "${ex[vmap-pages]}")"
