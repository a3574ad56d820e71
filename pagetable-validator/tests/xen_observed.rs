//! The seven results real Xen 4.17 gave for the basic pin sequence (docs/testing.md),
//! and its debug-log lines, reproduced by the validator.

mod common;

use common::{check, info, Space};
use pagetable_validator::pte::{
    _PAGE_ACCESSED, _PAGE_GLOBAL, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, PAGE_KERNEL_RO,
};
use pagetable_validator::{Mfn, PageType, Policy, Validator};

/// The frame real Xen used (mfn 1ee03, pfn 00203), mapped with flags 0x127.
const D: Mfn = Mfn(0x1ee03);
const D_PFN: u64 = 0x203;
const FLAGS_RW: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_GLOBAL;
const VA: u64 = 0xffff_8880_0020_3000;

fn lines(v: &mut Validator) -> Vec<String> {
    v.drain_events()
        .iter()
        .flat_map(|e| e.xen_log.iter().map(|m| m.to_string()).collect::<Vec<_>>())
        .collect()
}

#[test]
fn seven_results_and_log_lines_of_real_xen() {
    let mut s = Space::new(D.0 + 16, Mfn(0x100));
    let l4 = s.alloc();
    s.map(l4, VA, D, FLAGS_RW);
    assert_eq!(FLAGS_RW, 0x127);
    let mut v = Validator::new(D.0 + 16, Policy::Enforce);
    let mut m2p = vec![u64::MAX; (D.0 + 16) as usize];
    m2p[D.0 as usize] = D_PFN;
    v.set_m2p(m2p);
    v.register_initial(&mut s.mem, l4).unwrap();
    check(&v, &s.mem);
    v.drain_events();

    // 1. PIN_L1 a zeroed page that is still mapped RW: -22.
    let rc = v.pin(&mut s.mem, 1, D).map_err(|e| e.errno());
    assert_eq!(rc, Err(-22));
    assert_eq!(
        lines(&mut v),
        [
            "arch/x86/mm.c:2940:d0v0 Bad type (saw e400000000000001 != exp 2000000000000000) for mfn 1ee03 (pfn 00203)",
            "arch/x86/mm.c:3576:d0v0 Error -22 while pinning mfn 1ee03",
        ]
    );
    check(&v, &s.mem);

    // 2. Make the mapping RO with update_va_mapping, then PIN_L1: 0, 0.
    let ro = D.pte(FLAGS_RW & !_PAGE_RW);
    assert_eq!(v.update_va_mapping(&mut s.mem, VA, ro, 0), Ok(()));
    assert_eq!(v.pin(&mut s.mem, 1, D), Ok(()));
    assert!(v.is_pinned(D));
    assert_eq!(v.page_type(D), PageType::L1);
    check(&v, &s.mem);
    lines(&mut v);

    // 3. PIN_L1 the same frame again: -22.
    assert_eq!(v.pin(&mut s.mem, 1, D).map_err(|e| e.errno()), Err(-22));
    assert_eq!(
        lines(&mut v),
        ["arch/x86/mm.c:3588:d0v0 mfn 1ee03 already pinned"]
    );
    assert_eq!(info(&v, D).type_count, 1);
    check(&v, &s.mem);

    // 4. update_va_mapping it back to RW while pinned: -16.
    let rw = D.pte(FLAGS_RW);
    assert_eq!(rw, 0x1ee03127);
    assert_eq!(
        v.update_va_mapping(&mut s.mem, VA, rw, 0)
            .map_err(|e| e.errno()),
        Err(-16)
    );
    assert_eq!(
        lines(&mut v),
        [
            // Not in docs/testing.md's excerpt of the log, but printed by _get_page_type
            // for every type mismatch except the three linear-pagetable ones.
            "arch/x86/mm.c:2940:d0v0 Bad type (saw 2c00000000000001 != exp e000000000000000) for mfn 1ee03 (pfn 00203)",
            "arch/x86/mm.c:1014:d0v0 Could not get page type PGT_writable_page",
            "arch/x86/mm.c:1040:d0v0 Error getting mfn 1ee03 (pfn 00203) from L1 entry 000000001ee03127 for l1e_owner d0, pg_owner d0",
        ]
    );
    check(&v, &s.mem);

    // 5. UNPIN, then map RW: 0, 0.
    assert_eq!(v.unpin(&mut s.mem, D), Ok(()));
    assert_eq!(v.update_va_mapping(&mut s.mem, VA, rw, 0), Ok(()));
    assert_eq!(v.page_type(D), PageType::Writable);
    assert_eq!(info(&v, D).type_count, 1);
    check(&v, &s.mem);
    let _ = PAGE_KERNEL_RO;
}

/// The debug log real Xen 4.17.5 (debug build) printed for the `xen-rules` guest scenario,
/// with the frames it used (mfn -> pfn: 1c03f -> 3fc0 L4, 1c03d -> 3fc2 and 1c03c -> 3fc3
/// L2s, 1c03a a data page). These strings are Xen's output, not derived from our code.
#[test]
fn xen_rules_log_lines_of_the_debug_build() {
    use pagetable_validator::abi::MmuUpdate;
    use pagetable_validator::pte::{_PAGE_GLOBAL, _PAGE_NX, _PAGE_PSE};
    use pagetable_validator::{GuestFrames, Rules, VecFrames, L1_DISALLOW_IO_PRIV};
    const L4: Mfn = Mfn(0x1c03f);
    const L3: Mfn = Mfn(0x1c03e);
    const L2: Mfn = Mfn(0x1c03d);
    const L2B: Mfn = Mfn(0x1c03c);
    const L1: Mfn = Mfn(0x1c03b);
    const DATA: Mfn = Mfn(0x1c03a);
    const NR: u64 = 0x1c040;
    let p = _PAGE_PRESENT;
    let rw = _PAGE_PRESENT | _PAGE_RW;
    let mut mem = VecFrames::new(NR);
    let rules = Rules {
        l1_disallow: L1_DISALLOW_IO_PRIV,
        linear_pt: true,
    };
    let mut v = Validator::with_rules(NR, Policy::Enforce, rules);
    let mut m2p = vec![u64::MAX; NR as usize];
    for (m, pfn) in [(L4, 0x3fc0), (L3, 0x3fc1), (L2, 0x3fc2), (L2B, 0x3fc3)] {
        m2p[m.0 as usize] = pfn;
    }
    v.set_m2p(m2p);
    let req = |t: Mfn, slot: u64, val: u64| MmuUpdate {
        ptr: t.maddr() | (slot * 8),
        val,
    };

    // An L1 entry with Xen's GUEST_KERNEL bit and GLOBAL set by the guest.
    v.pin(&mut mem, 1, L1).unwrap();
    lines(&mut v);
    let gk = DATA.pte(p | _PAGE_NX | _PAGE_GLOBAL | (1 << 52));
    v.mmu_update(&mut mem, req(L1, 4, gk)).unwrap();
    assert_eq!(
        lines(&mut v),
        ["arch/x86/pv/mm.h:98:d0v0 Global bit is set in kernel page 1c03a"]
    );
    assert_eq!(mem.read_entry(L1, 4), gk | _PAGE_USER);

    // pin_l2 with a PSE entry in slot 0.
    mem.write_entry(L2, 0, DATA.pte(rw | _PAGE_PSE));
    assert_eq!(v.pin(&mut mem, 2, L2).map_err(|e| e.errno()), Err(-22));
    assert_eq!(
        lines(&mut v),
        [
            "arch/x86/mm.c:1134:d0v0 Bad L2 flags 80",
            "arch/x86/mm.c:1474:d0v0 Failure -22 in promote_l2_table: slot 0",
            "arch/x86/mm.c:2649:d0v0 Error while validating mfn 1c03d (pfn 03fc2) for type 4000000000000000: caf=8000000000000002 taf=4000000000000001",
            "arch/x86/mm.c:3576:d0v0 Error -22 while pinning mfn 1c03d",
        ]
    );
    mem.write_entry(L2, 0, L1.pte(rw));
    v.pin(&mut mem, 2, L2).unwrap();
    assert_eq!(
        v.mmu_update(&mut mem, req(L2, 1, DATA.pte(rw | _PAGE_PSE)))
            .map_err(|e| e.errno()),
        Err(-22)
    );
    assert_eq!(lines(&mut v), ["arch/x86/mm.c:2276:d0v0 Bad L2 flags 80"]);
    // A second L2 linking the pinned one read-write.
    mem.write_entry(L2B, 0, L2.pte(rw));
    assert_eq!(v.pin(&mut mem, 2, L2B).map_err(|e| e.errno()), Err(-22));
    assert_eq!(
        lines(&mut v),
        [
            "arch/x86/mm.c:1124:d0v0 Attempt to create linear p.t. with write perms",
            "arch/x86/mm.c:1474:d0v0 Failure -22 in promote_l2_table: slot 0",
            "arch/x86/mm.c:2649:d0v0 Error while validating mfn 1c03c (pfn 03fc3) for type 4000000000000000: caf=8000000000000002 taf=4000000000000001",
            "arch/x86/mm.c:3576:d0v0 Error -22 while pinning mfn 1c03c",
        ]
    );

    // L4: hypervisor slot update, RW self-map, PSE flag in slot 0.
    mem.write_entry(L3, 0, L2.pte(rw));
    mem.write_entry(L4, 0, L3.pte(rw));
    v.pin(&mut mem, 4, L4).unwrap();
    assert_eq!(
        v.mmu_update(&mut mem, req(L4, 256, 0))
            .map_err(|e| e.errno()),
        Err(-22)
    );
    assert_eq!(
        lines(&mut v),
        ["arch/x86/mm.c:2389:d0v0 L4 update in Xen-private area, slot 0x100"]
    );
    v.unpin(&mut mem, L4).unwrap();
    mem.write_entry(L4, 1, L4.pte(rw));
    assert_eq!(v.pin(&mut mem, 4, L4).map_err(|e| e.errno()), Err(-22));
    assert_eq!(
        lines(&mut v),
        [
            "arch/x86/mm.c:1172:d0v0 Attempt to create linear p.t. with write perms",
            "arch/x86/mm.c:1784:d0v0 Failure -22 in promote_l4_table: slot 0x1",
            "arch/x86/mm.c:2649:d0v0 Error while validating mfn 1c03f (pfn 03fc0) for type 8000000000000000: caf=8000000000000002 taf=8000000000000001",
            "arch/x86/mm.c:3576:d0v0 Error -22 while pinning mfn 1c03f",
        ]
    );
    mem.write_entry(L4, 0, L3.pte(rw | _PAGE_PSE));
    mem.write_entry(L4, 1, 0);
    assert_eq!(v.pin(&mut mem, 4, L4).map_err(|e| e.errno()), Err(-22));
    assert_eq!(
        lines(&mut v),
        [
            "arch/x86/mm.c:1181:d0v0 Bad L4 flags 80",
            "arch/x86/mm.c:1784:d0v0 Failure -22 in promote_l4_table: slot 0",
            "arch/x86/mm.c:2649:d0v0 Error while validating mfn 1c03f (pfn 03fc0) for type 8000000000000000: caf=8000000000000002 taf=8000000000000001",
            "arch/x86/mm.c:3576:d0v0 Error -22 while pinning mfn 1c03f",
        ]
    );
}
