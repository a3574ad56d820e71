#!/usr/bin/env bash
# Conformance by hand: boots the guest with each command line on real Xen 4.17 (QEMU) and on
# our VMM (KVM), and diffs the hypervisor-independent transcript lines (T<nn>, END, COUNTS,
# WORK, VERDICT, DEMO). The automated version is tests/tests/scenarios_matrix.rs.
#
# Usage: scripts/conformance.sh ["scenario=... variant=..." ...]
#   default: every row of guest/scenarios.manifest whose `runs` field names `conformance`
#   (docs/scenarios.md lists them)
# Exit status: 0 all identical, 1 some transcript differs or a run failed.
# Environment: VMM_ARGS  extra `vmm run` options, e.g. "--p2m shuffle".
set -euo pipefail
cd "$(dirname "$0")/.."

if (($# == 0)); then
  # Fields: cmdline | verdicts | provenance | runs | what happens (format in the manifest).
  while IFS='|' read -r cmdline _ _ runs _; do
    [[ $cmdline =~ ^[[:space:]]*(#|$) ]] && continue
    [[ " $runs " == *" conformance "* ]] || continue
    cmdline=${cmdline#"${cmdline%%[![:space:]]*}"}
    set -- "$@" "${cmdline%"${cmdline##*[![:space:]]}"}"
  done <guest/scenarios.manifest
  (($# > 0)) || { echo "conformance: no conformance rows in guest/scenarios.manifest" >&2; exit 1; }
fi

elf=$(bash scripts/build-guest.sh 2>/dev/null | tail -n1)
cargo build -q --release -p vmm
vmm=${CARGO_TARGET_DIR:-target}/release/vmm
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

transcript() { grep -E '^(T[0-9]+ |END |COUNTS |WORK |VERDICT |DEMO )' "$1" || true; }

bad=0
for cmdline in "$@"; do
  xen=$tmp/xen.out kvm=$tmp/vmm.out
  xen_rc=0 vmm_rc=0
  bash scripts/xen-qemu.sh "$elf" "$cmdline" >"$xen" 2>"$tmp/xen.err" || xen_rc=$?
  # shellcheck disable=SC2086 # VMM_ARGS is a list of options
  "$vmm" run -q ${VMM_ARGS:-} "$elf" --cmdline "$cmdline" >"$kvm" 2>"$tmp/vmm.err" || vmm_rc=$?
  transcript "$xen" >"$tmp/xen.t"
  transcript "$kvm" >"$tmp/vmm.t"
  n=$(wc -l <"$tmp/xen.t")
  if ((xen_rc != 0 || vmm_rc != 0)); then
    echo "FAIL  $cmdline  (real Xen exit $xen_rc, vmm exit $vmm_rc)"
    tail -n 3 "$tmp/xen.err" "$tmp/vmm.err" | sed 's/^/      /'
    bad=1
  elif ((n == 0)); then
    echo "FAIL  $cmdline  (no transcript lines)"
    bad=1
  elif diff -u --label real-xen --label vmm "$tmp/xen.t" "$tmp/vmm.t" >"$tmp/diff"; then
    echo "same  $cmdline  ($n lines)"
  else
    echo "DIFF  $cmdline"
    sed 's/^/      /' "$tmp/diff"
    bad=1
  fi
done
exit "$bad"
