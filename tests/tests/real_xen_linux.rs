//! Debian 12's stock kernel (the bzImage from linux-image-6.1.0-N-amd64) with the project's
//! initramfs, as dom0 of real Xen 4.17 under QEMU TCG: the ground truth for the same boot on
//! the VMM. /init forks and execs 200 rounds of short processes, round-trips a file through
//! tmpfs and runs the mmap/COW/munmap churn, then prints one result line and powers off.
//!
//! Needs QEMU and Debian's packages (xen-hypervisor-4.17-amd64, the kernel, busybox-static via
//! `apt-get download`): in CI (`CI=true`) their absence fails the test, elsewhere it is skipped
//! with one line. About 20-30 s of QEMU time on the project's machines.

use xenkvm_tests::linux::{initramfs, linux_or_skip, result_lines, run_linux_on_xen, RESULT_PASS};
use xenkvm_tests::real_xen::{qemu_or_skip, XenStatus};

#[test]
fn debian_kernel_boots_to_init_and_passes_on_real_xen() {
    let test = "real_xen_linux";
    if !qemu_or_skip(test) {
        return;
    }
    let Some(linux) = linux_or_skip(test) else {
        return;
    };
    let initrd = initramfs();
    let run = run_linux_on_xen(&linux.vmlinuz, &initrd);
    eprintln!(
        "{test}: {} with {}: {:?} after {:.1?}",
        linux.kernel_deb.display(),
        initrd.display(),
        run.status,
        run.wall
    );
    // The kernel reached /init through the initramfs Xen passed as the first module.
    assert!(
        run.guest_lines
            .iter()
            .any(|l| l.contains("Run /init as init process")),
        "{}",
        run.dump()
    );
    assert_eq!(
        result_lines(&run.guest_lines),
        [RESULT_PASS],
        "{}",
        run.dump()
    );
    // /init's poweroff -f: dom0 powered off through ACPI S5 (no crash, no panic, no timeout).
    assert_eq!(run.status, XenStatus::Halted, "{}", run.dump());
    assert!(
        run.xen_lines
            .iter()
            .any(|l| l.contains("Entering ACPI S5 state")),
        "{}",
        run.dump()
    );
}
