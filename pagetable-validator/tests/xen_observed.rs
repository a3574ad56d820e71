//! The seven results real Xen 4.17 gave for the basic pin sequence (DESIGN §4),
//! and its debug-log lines, reproduced by the validator.

mod common;

use common::{check, info, Space};
use pagetable_validator::pte::{
    mk_pte, _PAGE_ACCESSED, _PAGE_GLOBAL, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, PAGE_KERNEL_RO,
};
use pagetable_validator::{PageType, Policy, Validator};

/// The frame real Xen used (mfn 1ee03, pfn 00203), mapped with flags 0x127.
const D: u64 = 0x1ee03;
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
    let mut s = Space::new(D + 16, 0x100);
    let l4 = s.alloc();
    s.map(l4, VA, D, FLAGS_RW);
    assert_eq!(FLAGS_RW, 0x127);
    let mut v = Validator::new(D + 16, Policy::Enforce);
    let mut m2p = vec![u64::MAX; (D + 16) as usize];
    m2p[D as usize] = D_PFN;
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
            "mm.c:2940:d0v0 Bad type (saw e400000000000001 != exp 2000000000000000) for mfn 1ee03 (pfn 00203)",
            "mm.c:3576:d0v0 Error -22 while pinning mfn 1ee03",
        ]
    );
    check(&v, &s.mem);

    // 2. Make the mapping RO with update_va_mapping, then PIN_L1: 0, 0.
    let ro = mk_pte(D, FLAGS_RW & !_PAGE_RW);
    assert_eq!(v.update_va_mapping(&mut s.mem, VA, ro, 0), Ok(()));
    assert_eq!(v.pin(&mut s.mem, 1, D), Ok(()));
    assert!(v.is_pinned(D));
    assert_eq!(v.page_type(D), PageType::L1);
    check(&v, &s.mem);
    lines(&mut v);

    // 3. PIN_L1 the same frame again: -22.
    assert_eq!(v.pin(&mut s.mem, 1, D).map_err(|e| e.errno()), Err(-22));
    assert_eq!(lines(&mut v), ["mm.c:3588:d0v0 mfn 1ee03 already pinned"]);
    assert_eq!(info(&v, D).type_count, 1);
    check(&v, &s.mem);

    // 4. update_va_mapping it back to RW while pinned: -16.
    let rw = mk_pte(D, FLAGS_RW);
    assert_eq!(rw, 0x1ee03127);
    assert_eq!(
        v.update_va_mapping(&mut s.mem, VA, rw, 0)
            .map_err(|e| e.errno()),
        Err(-16)
    );
    assert_eq!(
        lines(&mut v),
        [
            // Not in DESIGN's excerpt of the log, but printed by _get_page_type
            // for every type mismatch except the three linear-pagetable ones.
            "mm.c:2940:d0v0 Bad type (saw 2c00000000000001 != exp e000000000000000) for mfn 1ee03 (pfn 00203)",
            "mm.c:1014:d0v0 Could not get page type PGT_writable_page",
            "mm.c:1040:d0v0 Error getting mfn 1ee03 (pfn 00203) from L1 entry 000000001ee03127 for l1e_owner d0, pg_owner d0",
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
