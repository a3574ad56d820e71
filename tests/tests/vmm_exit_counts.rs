//! The exit-cost workload (tests/asm-guest/exits.S, the guest of scripts/bench-exits.sh) under
//! KVM: every case runs with all its hypercalls succeeding, and N operations cost the KVM_RUNs
//! the design gives them, counted by the VMM's `exit cost:` summary line against a run with
//! no operation. Counts only, never durations.

mod vmm_support;

use vmm_support::{exits_guest, kvm_or_skip, vmm, EXIT_POWEROFF};

const N: u64 = 200;

/// `key=<number>` from the summary on stderr.
fn count(stderr: &str, key: &str) -> u64 {
    let pat = format!("{key}=");
    let at = stderr
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in\n{stderr}"));
    stderr[at + pat.len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("{key} is not a number in\n{stderr}"))
}

/// KVM_RUNs (less the ones a host timer interrupted) of case `letter` with `n` operations,
/// after checking the guest's own report.
fn runs(letter: char, n: u64) -> u64 {
    let elf = exits_guest();
    let cmdline = format!("{letter} {n}");
    let run = vmm(&["run", "--cmdline", &cmdline, elf.to_str().unwrap()]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    for line in [
        format!("EXITS case rc={:016x}", letter as u32),
        format!("EXITS ops rc={n:016x}"),
        "EXITS err rc=0000000000000000".to_string(),
    ] {
        assert!(
            run.stdout.contains(&line),
            "{line:?} missing:\n{}",
            run.dump()
        );
    }
    count(&run.stderr, "kvm_runs") - count(&run.stderr, "timer_interrupts")
}

/// Extra KVM_RUNs of N operations of `letter` over none.
fn per_case(letter: char) -> u64 {
    runs(letter, N) - runs(letter, 0)
}

#[test]
fn each_operation_costs_the_exits_the_design_gives_it() {
    if !kvm_or_skip("each_operation_costs_the_exits_the_design_gives_it") {
        return;
    }
    // One exit at the hypercall port.
    assert_eq!(per_case('n'), N, "null hypercall");
    // The exception's (or SYSCALL's) stub exit, then HYPERVISOR_iret; the syscall case also
    // enters user mode once (an iret) and leaves the loop with one more syscall.
    assert_eq!(per_case('e'), 2 * N, "int3 bounce");
    assert_eq!(per_case('s'), 2 * N + 2, "syscall bounce");
    // The hypercall, then the ring-0 trampoline re-storing the changed entry (none for the
    // first operation, whose slot was empty).
    let u = per_case('u');
    assert!(
        (2 * N - 1..=2 * N).contains(&u),
        "mmu_update of one entry: {u}"
    );
    // 512 entries: cut after 256 (a continuation), each half re-stored by the trampoline.
    let b = per_case('b');
    assert!(
        (4 * N - 2..=4 * N).contains(&b),
        "mmu_update of 512 entries: {b}"
    );
}
