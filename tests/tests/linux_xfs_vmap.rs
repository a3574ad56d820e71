//! XFS's 2007 lazy-vunmap bug inside Debian's stock Linux 6.1: the out-of-tree module
//! `linux/xfs-vmap/xfs_vmap.ko` (built against Debian's linux-headers) maps 32 buffers of 4
//! fresh pages with `vmap()`, releases them the variant's way, and /init forks until one of the
//! released pages is a pinned pagetable (see `linux/init.sh`, `xfs_vmap_scenario`).
//!
//! | variant | what the module does on release | real Xen 4.17 | vmm enforce | vmm audit |
//! |---|---|---|---|---|
//! | lazy | frees the pages, keeps the vmap alias for a deferred vunmap | pin refused: Linux WARNs in xen_mc_flush (panic_on_warn) | the same, and our refusal names the alias's vmalloc VA and L1 slot | runs on, every offender listed |
//! | eager | vunmap, then free | clean | clean | - |
//! | refs | the vmap holds a page reference until the deferred vunmap | clean | clean | - |
//!
//! Real Xen is the oracle for the outcome; the provenance is ours. Needs /dev/kvm, QEMU and
//! Debian's packages: in CI their absence fails the tests, elsewhere they skip with one line.

mod vmm_support;

use vmm_support::{kvm_or_skip, run_linux, VmmRun, EXIT_CRASH, EXIT_POWEROFF};
use xenkvm_tests::linux::{
    field_u64, initramfs, linux_or_skip, linux_pin_failure_report, run_linux_on_xen_with,
    xfs_vmap_alias_range, xfs_vmap_cmdline, xfs_vmap_result,
};
use xenkvm_tests::real_xen::{qemu_or_skip, XenStatus};

/// `xfsvmap=VARIANT` on the VMM under `policy`.
fn on_vmm(variant: &str, policy: &str) -> Option<(VmmRun, Vec<String>)> {
    let test = format!("linux_xfs_vmap {variant} ({policy})");
    if !kvm_or_skip(&test) {
        return None;
    }
    let linux = linux_or_skip(&test)?;
    let initrd = initramfs();
    let cmdline = xfs_vmap_cmdline(variant);
    let run = run_linux(&linux.vmlinuz, &initrd, policy, &cmdline);
    eprintln!("{test}: status {:?} after {:.1?}", run.status, run.wall);
    let lines: Vec<String> = run.lines().iter().map(|l| l.to_string()).collect();
    // Every variant: no user process dies of a fault (real Xen has none in these runs). Many
    // processes live at once here; that is what showed the VMM's old lost-vector-state bug
    // (docs/testing.md, "Vector registers across processes").
    let segv: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("]: segfault at "))
        .collect();
    assert!(
        segv.is_empty(),
        "{test}: user processes segfaulted on the VMM:\n{segv:#?}"
    );
    Some((run, lines))
}

/// `xfsvmap=VARIANT` as dom0 of real Xen 4.17 in QEMU.
fn on_xen(variant: &str) -> Option<xenkvm_tests::real_xen::XenRun> {
    let test = format!("linux_xfs_vmap {variant} (real Xen)");
    if !qemu_or_skip(&test) {
        return None;
    }
    let linux = linux_or_skip(&test)?;
    let initrd = initramfs();
    let run = run_linux_on_xen_with(&linux.vmlinuz, &initrd, &xfs_vmap_cmdline(variant));
    eprintln!("{test}: {:?} after {:.1?}", run.status, run.wall);
    Some(run)
}

/// The `vmalloc va <hex>` of each provenance line of the VMM's stderr.
fn provenance_vas(stderr: &str) -> Vec<u64> {
    stderr
        .lines()
        .filter(|l| l.starts_with("provenance: "))
        .filter_map(|l| l.split(" at vmalloc va ").nth(1)?.split(' ').next())
        .filter_map(|v| u64::from_str_radix(v, 16).ok())
        .collect()
}

/// Every refusal's provenance is one of the module's stale aliases, in an L1 slot.
fn assert_blames_the_module(run: &VmmRun, lines: &[String]) {
    let (lo, hi) = xfs_vmap_alias_range(lines).unwrap_or_else(|| panic!("{}", run.dump()));
    let vas = provenance_vas(&run.stderr);
    assert!(!vas.is_empty(), "no provenance\n{}", run.dump());
    for va in vas {
        assert!(
            (lo..hi).contains(&va),
            "provenance va {va:#x} outside the module's aliases {lo:#x}-{hi:#x}\n{}",
            run.stderr
        );
    }
    assert!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("provenance: "))
            .all(|l| l.contains(" still mapped RW by L1 mfn ") && l.contains(" slot ")),
        "{}",
        run.stderr
    );
}

#[test]
fn lazy_on_real_xen_the_pin_is_refused_and_linux_reports_it() {
    let Some(run) = on_xen("lazy") else { return };
    linux_pin_failure_report(&run.guest_lines).unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    assert_eq!(xfs_vmap_result(&run.guest_lines), None, "{}", run.dump());
    assert_eq!(run.status, XenStatus::Crashed, "{}", run.dump());
}

#[test]
fn lazy_on_the_vmm_is_refused_as_on_xen_and_names_the_stale_alias() {
    let Some((run, lines)) = on_vmm("lazy", "enforce") else {
        return;
    };
    linux_pin_failure_report(&lines).unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    assert_eq!(xfs_vmap_result(&lines), None, "{}", run.dump());
    assert_eq!(run.status, Some(EXIT_CRASH), "{}", run.dump());
    // Xen's own words for the refused pin, then ours: which mapping is to blame.
    assert!(
        run.stderr.contains("Error -22 while pinning mfn"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("vmm: REFUSED (-22): mfn "),
        "{}",
        run.stderr
    );
    assert_blames_the_module(&run, &lines);
}

#[test]
fn lazy_under_audit_runs_on_and_lists_every_offender() {
    let Some((run, lines)) = on_vmm("lazy", "audit") else {
        return;
    };
    assert_eq!(
        xfs_vmap_result(&lines),
        Some("XENKVM-XFSVMAP variant=lazy result=stale-alias-pinned"),
        "{}",
        run.dump()
    );
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let tolerated: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("audit: tolerated (Xen would refuse): "))
        .collect();
    // The module saw `aliased` of its released pages pinned as pagetables while their alias
    // lived; each was validated, so each is a frame the VMM tolerated (which levels they
    // became depends on the allocator's order: L1s always, L4..L2 in some runs).
    let aliased = field_u64(&lines, "XENKVM-XFSVMAP variant=lazy forks=", "aliased").unwrap_or(0);
    let mut frames: Vec<&str> = tolerated
        .iter()
        .filter_map(|l| l.split("mfn ").nth(1)?.split(' ').next())
        .collect();
    frames.sort_unstable();
    frames.dedup();
    assert!(aliased >= 1, "{}", run.dump());
    assert!(
        frames.len() as u64 >= aliased,
        "the module saw {aliased} aliased pagetables, the VMM tolerated {frames:?}\n{}",
        run.stderr
    );
    assert!(
        tolerated
            .iter()
            .all(|l| l.contains("pagetable: still mapped writable in ")),
        "{tolerated:#?}"
    );
    assert_blames_the_module(&run, &lines);
    assert!(!run.stderr.contains("REFUSED"), "{}", run.stderr);
}

/// eager and refs: no stale alias when a released page becomes a pagetable, on both.
fn fixed_variant(variant: &str) {
    let expect = format!("XENKVM-XFSVMAP variant={variant} result=clean");
    if let Some(run) = on_xen(variant) {
        assert_eq!(
            xfs_vmap_result(&run.guest_lines),
            Some(expect.as_str()),
            "{}",
            run.dump()
        );
        assert_eq!(run.status, XenStatus::Halted, "{}", run.dump());
    }
    if let Some((run, lines)) = on_vmm(variant, "enforce") {
        assert_eq!(
            xfs_vmap_result(&lines),
            Some(expect.as_str()),
            "{}",
            run.dump()
        );
        assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
        assert!(!run.stderr.contains("REFUSED"), "{}", run.stderr);
        let landed = field_u64(&lines, "forks=", "landed").unwrap_or(u64::MAX);
        match variant {
            // eager's pages were free to come back as pagetables, and did: harmless without
            // an alias. refs holds them until the purge, so none can.
            "eager" => assert!(landed >= 1, "{}", run.dump()),
            _ => assert_eq!(landed, 0, "{}", run.dump()),
        }
    }
}

#[test]
fn eager_is_clean_on_real_xen_and_the_vmm() {
    fixed_variant("eager");
}

#[test]
fn refs_is_clean_on_real_xen_and_the_vmm() {
    fixed_variant("refs");
}
