//! The guest's `basics` scenario on real Xen 4.17 (dom0 in QEMU TCG): the ground truth the
//! VMM's validator must later reproduce.
//!
//! Expected return codes are Xen's, not ours: T01..T07 are the values docs/testing.md records from
//! real Xen 4.17; each later one is a Xen rule cited next to it (xen/arch/x86/mm.c). A debug
//! build of Xen 4.17.5 (`XEN_ELF=... scripts/xen-qemu.sh`) gave the same transcript and logged
//! the stated reason for every failure: "Bad type" for T01/T14/T19 (writable resp. L1 type
//! held), "already pinned" (T04), "Could not get page type PGT_writable_page" (T05/T17),
//! "not pinned" (T11/T22).

use xenkvm_tests::guest::guest_elf;
use xenkvm_tests::real_xen::{qemu_or_skip, run_on_xen, XenStatus};

const EINVAL: i64 = -22;
const EBUSY: i64 = -16;

/// (description the guest prints, rc real Xen returns, why).
const EXPECTED: &[(&str, i64, &str)] = &[
    // The basic pin sequence (docs/testing.md), in order.
    (
        "pin_l1 A (zeroed, still mapped RW)",
        EINVAL,
        "writable type ref blocks PGT_l1",
    ),
    (
        "update_va_mapping A -> RO",
        0,
        "dropping the RW mapping drops the writable ref",
    ),
    ("pin_l1 A (mapped RO only)", 0, "no writable ref left"),
    ("pin_l1 A again (already pinned)", EINVAL, "already pinned"),
    (
        "update_va_mapping A -> RW while pinned",
        EBUSY,
        "get_page_type(writable) fails on an L1",
    ),
    ("unpin A", 0, "it was pinned"),
    (
        "update_va_mapping A -> RW after unpin",
        0,
        "type count 0 again: may become writable",
    ),
    // Linux's batched pin: make RO then pin, in one multicall.
    (
        "multicall [update_va_mapping A -> RO, pin_l1 A]",
        0,
        "the batch itself is accepted",
    ),
    (
        "multicall entry 0: update_va_mapping A -> RO",
        0,
        "drops the writable ref",
    ),
    (
        "multicall entry 1: pin_l1 A",
        0,
        "runs after entry 0, so no writable ref",
    ),
    // Unpin succeeds once; the second fails and the batch reports one success.
    (
        "mmuext_op [unpin A, unpin A] done=1",
        EINVAL,
        "second unpin: not pinned",
    ),
    (
        "update_va_mapping A -> not present",
        0,
        "unmapping is always allowed",
    ),
    // An L1 holding an RW mapping makes the mapped page unpinnable.
    (
        "pin_l1 C (entry 0 maps B RW)",
        0,
        "B is a plain page: RW mapping allowed",
    ),
    (
        "pin_l1 B (mapped RW by pinned L1 C)",
        EINVAL,
        "C's entry holds a writable ref on B",
    ),
    (
        "mmu_update C[0] = none",
        0,
        "clearing an entry of a pinned L1",
    ),
    (
        "pin_l1 B (no RW mapping left)",
        0,
        "the writable ref went with the entry",
    ),
    (
        "mmu_update C[0] = B RW while B is pinned",
        EBUSY,
        "get_page_from_l1e: B is an L1",
    ),
    (
        "mmu_update(preserve_ad) C[0] = B RO while B is pinned",
        0,
        "RO maps of tables are fine",
    ),
    (
        "pin_l2 C (frame typed L1)",
        EINVAL,
        "type conflict: L1 has count > 0",
    ),
    (
        "pin_l2 D (entry 0 -> pinned L1 C)",
        0,
        "L2 entry takes an L1 type ref on C",
    ),
    ("unpin D", 0, "it was pinned"),
    ("unpin D again (not pinned)", EINVAL, "not pinned"),
    ("unpin C", 0, "it was pinned"),
    ("unpin B", 0, "it was pinned"),
];

#[test]
fn basics_transcript_matches_real_xen() {
    if !qemu_or_skip("basics_transcript_matches_real_xen") {
        return;
    }
    let elf = guest_elf();
    let run = run_on_xen(&elf, "scenario=basics");
    assert_eq!(run.status, XenStatus::Halted, "{}", run.dump());
    let t = run
        .transcript()
        .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    eprintln!("real Xen boot: {:.2?}\n{}", run.wall, t.lines().join("\n"));

    // The seven operations of the basic pin sequence, as real Xen 4.17 answered them.
    assert_eq!(t.rcs()[..7], [-22, 0, 0, -22, -16, 0, 0], "{}", run.dump());

    assert_eq!(t.ops.len(), EXPECTED.len(), "{}", run.dump());
    for (op, &(what, rc, why)) in t.ops.iter().zip(EXPECTED) {
        assert_eq!(op.what, what, "T{:02} is a different operation", op.n);
        assert_eq!(op.rc, rc, "T{:02} {what}: expected {rc} ({why})", op.n);
    }
    assert_eq!(t.end, "END basics ops=24 ok=16 failed=8");
}

#[test]
fn guest_panic_is_reported_as_a_crash() {
    if !qemu_or_skip("guest_panic_is_reported_as_a_crash") {
        return;
    }
    let run = run_on_xen(&guest_elf(), "scenario=panic variant=probe");
    assert_eq!(run.status, XenStatus::Crashed, "{}", run.dump());
    let line = run
        .guest_lines
        .iter()
        .find(|l| l.starts_with("Kernel panic: "))
        .unwrap_or_else(|| panic!("no panic message\n{}", run.dump()));
    assert!(
        line.contains("deliberate panic (variant=probe)") && line.contains("src/scenarios/"),
        "panic line lacks message or location: {line}"
    );
    assert!(
        run.xen_lines
            .iter()
            .any(|l| l.contains("Hardware Dom0 crashed")),
        "{}",
        run.dump()
    );
}

#[test]
fn guest_selftest_passes_on_real_xen() {
    if !qemu_or_skip("guest_selftest_passes_on_real_xen") {
        return;
    }
    let run = run_on_xen(&guest_elf(), "scenario=selftest");
    assert_eq!(run.status, XenStatus::Halted, "{}", run.dump());
    let t = run
        .transcript()
        .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    let failed: Vec<_> = t.ops.iter().filter(|o| o.rc != 0).collect();
    assert!(failed.is_empty(), "guest self-checks failed: {failed:?}");
    // Every check the guest has must have run (a silently shortened list would pass above).
    assert_eq!(t.ops.len(), 12, "{}", run.dump());
}
