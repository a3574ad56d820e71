//! Debian 12's stock kernel with the project's initramfs, as a PV dom0 on the VMM: the same
//! bzImage and initramfs that real_xen_linux.rs boots on real Xen 4.17 must reach /init and
//! print the same result line (the Linux-side facts: 200 fork/exec rounds, a tmpfs round trip,
//! the mmap/COW/munmap churn), with every pin and PTE update validated and none refused, and
//! again under `--policy audit` with no stray writable mapping tolerated (a correct kernel
//! has none).
//!
//! Needs /dev/kvm and Debian's packages (fetched with `apt-get download`): in CI their absence
//! fails the test, elsewhere it is skipped with one line. About a minute per boot here.

mod vmm_support;

use vmm_support::{kvm_or_skip, run_linux, EXIT_POWEROFF};
use xenkvm_tests::linux::{initramfs, linux_or_skip, result_lines, CMDLINE, RESULT_PASS};

fn summary_count(stderr: &str, key: &str) -> Option<u64> {
    stderr
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

fn boot(policy: &str) {
    let test = format!("vmm_linux ({policy})");
    if !kvm_or_skip(&test) {
        return;
    }
    let Some(linux) = linux_or_skip(&test) else {
        return;
    };
    let initrd = initramfs();
    let run = run_linux(&linux.vmlinuz, &initrd, policy, CMDLINE);
    eprintln!("{test}: status {:?} after {:.1?}", run.status, run.wall);
    let lines = run.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Run /init as init process")),
        "{}",
        run.dump()
    );
    let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    assert_eq!(result_lines(&lines), [RESULT_PASS], "{}", run.dump());
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    // Validated all the way: the kernel pinned thousands of tables and wrote pinned L1s
    // directly (writable pagetables); nothing was refused or tolerated.
    let pins = summary_count(&run.stderr, "pins").unwrap_or(0);
    let ptwr = summary_count(&run.stderr, "ptwr").unwrap_or(0);
    assert!(pins >= 1000, "only {pins} pins\n{}", run.stderr);
    assert!(
        ptwr >= 100,
        "only {ptwr} writable-pagetable updates\n{}",
        run.stderr
    );
    assert_eq!(
        summary_count(&run.stderr, "violations"),
        Some(0),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("REFUSED"), "{}", run.stderr);
    assert!(!run.stderr.contains("audit: tolerated"), "{}", run.stderr);
}

#[test]
fn debian_kernel_boots_to_init_on_the_vmm_with_every_pin_validated() {
    boot("enforce");
}

#[test]
fn debian_kernel_under_audit_has_no_stray_writable_mapping() {
    boot("audit");
}
