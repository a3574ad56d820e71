#!/usr/bin/env bash
# The VMM's cost per exit, per kind of guest operation (issue 12 item 2). Prints a table and
# writes $CARGO_TARGET_DIR/bench/vmm_exits.json (default target/bench/). Asserts nothing.
#
# The guest tests/asm-guest/exits.S repeats one operation N times and reports the guest TSC
# ticks it took (the total cost seen by the guest). The VMM counts, on every KVM_RUN, the time
# inside KVM_RUN and its own time between a KVM_RUN's return and the next KVM_RUN call
# (vcpu/cost.rs; the summary's "exit cost:" line). Each case runs twice, with N and with 0
# operations, and the difference removes boot and setup:
#   exits_per_op     = Δ KVM_RUNs / N      (hypercall, exception and trampoline exits)
#   own_ns_per_exit  = Δ own time / Δ KVM_RUNs
#   exit_ns_per_exit = Δ time inside KVM_RUN / Δ KVM_RUNs (the exit's hardware and KVM cost,
#                      plus the few guest instructions between two exits)
#   total_ns_per_op  = guest TSC ticks / N, at the vCPU's TSC rate
#
# Usage: scripts/bench-exits.sh [SCALE]   (SCALE multiplies the default N of every case; 1)
set -euo pipefail
cd "$(dirname "$0")/.."

scale=${1:-1}
target=${CARGO_TARGET_DIR:-target}
out=$target/bench
build=$out/exits-guest
mkdir -p "$build"
cc -c tests/asm-guest/exits.S -I tests/asm-guest -o "$build/exits.o"
ld -nostdlib -static -n --build-id=none -z max-page-size=4096 --no-warn-rwx-segments \
  -T tests/asm-guest/link.ld -o "$build/exits.elf" "$build/exits.o"
cargo build -q --release -p vmm
vmm=$target/release/vmm

# run CASE N -> "kvm_runs in_kvm_ns own_ns tsc_ticks tsc_khz err" (the guest and VMM figures)
run() {
  local o
  if ! o=$("$vmm" run --cmdline "$1 $2" "$build/exits.elf" 2>&1); then
    echo "vmm run failed for \"$1 $2\":" >&2
    echo "$o" | tail -20 >&2
    exit 1
  fi
  echo "$o" | awk '
    /^EXITS tsc rc=/ { sub(/.*rc=/, ""); tsc = $0 }
    /^EXITS err rc=/ { sub(/.*rc=/, ""); err = $0 }
    /^exit cost:/ {
      for (i = 1; i <= NF; i++) {
        split($i, kv, "=")
        if (kv[1] == "kvm_runs") runs = kv[2]
        if (kv[1] == "in_kvm_ns") kvm = kv[2]
        if (kv[1] == "own_ns") own = kv[2]
        if (kv[1] == "(tsc_khz") { khz = kv[2]; sub(/\)/, "", khz) }
      }
    }
    END { print runs, kvm, own, tsc, khz, err }'
}

printf '%-17s %7s %9s %14s %14s %15s\n' case ops exits/op total_us/op own_ns/exit exit_ns/exit
json=""
for spec in null_hypercall:n:20000 mmu_update_1:u:10000 mmu_update_512:b:300 \
  exception_bounce:e:10000 syscall_bounce:s:10000; do
  IFS=: read -r name letter n <<<"$spec"
  n=$((n * scale))
  read -r r0 k0 o0 _ _ _ <<<"$(run "$letter" 0)"
  read -r r1 k1 o1 tsc khz err <<<"$(run "$letter" "$n")"
  tsc=$((16#$tsc))
  if [[ $err != 0000000000000000 ]]; then
    echo "case $name: a hypercall failed (OR of results $err)" >&2
    exit 1
  fi
  row=$(awk -v n="$n" -v r0="$r0" -v r1="$r1" -v k0="$k0" -v k1="$k1" -v o0="$o0" -v o1="$o1" \
    -v tsc="$tsc" -v khz="$khz" -v name="$name" 'BEGIN {
      dr = r1 - r0; if (dr < 1) dr = 1
      printf "%s %d %.3f %.1f %.1f %.1f\n", name, n, dr / n, tsc / n * 1e6 / khz, (o1 - o0) / dr, (k1 - k0) / dr }')
  read -r _ _ epo total own exitns <<<"$row"
  printf '%-17s %7d %9s %14.2f %14s %15s\n' "$name" "$n" "$epo" "$(awk -v t="$total" 'BEGIN { print t / 1000 }')" "$own" "$exitns"
  json+="${json:+,}
    {\"name\": \"$name\", \"ops\": $n, \"exits_per_op\": $epo, \"total_ns_per_op\": $total, \"own_ns_per_exit\": $own, \"exit_ns_per_exit\": $exitns}"
done
printf '{"cases": [%s\n]}\n' "$json" >"$out/vmm_exits.json"
echo "figures written to $out/vmm_exits.json"
