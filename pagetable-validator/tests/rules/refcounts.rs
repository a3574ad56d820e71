//! Page types, pins and the references entries hold.

use super::*;

#[test]
fn pin_unpin_error_codes() {
    let mut mem = VecFrames::new(NR);
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(10))), 0);
    // PIN_L2 over a pinned L1: "Bad type" -22.
    log(&mut v);
    assert_eq!(errno(v.pin(&mut mem, 2, Mfn(10))), -22);
    let l = log(&mut v);
    assert!(
        l.contains("Bad type (saw 2c00000000000001 != exp 4000000000000000) for mfn 0000a"),
        "{l}"
    );
    assert!(l.contains("Error -22 while pinning mfn 0000a"));
    assert_eq!(errno(v.unpin(&mut mem, Mfn(11))), -22);
    assert!(log(&mut v).contains("mfn 0000b not pinned"));
    assert_eq!(errno(v.pin(&mut mem, 0, Mfn(11))), -22);
    assert_eq!(errno(v.pin(&mut mem, 5, Mfn(11))), -22);
    v.unpin(&mut mem, Mfn(10)).unwrap();
    assert_eq!(v.page_type(Mfn(10)), PageType::None);
    assert_eq!(info(&v, Mfn(10)).refs, 0);
    mem.write_entry(Mfn(12), 0, 0);
    check(&v, &mem);
}

#[test]
fn type_changes_only_at_count_zero() {
    let (mut s, mut v, l4) = kernel_space();
    let l1 = s.table_of(l4, KVA, 1);
    let l2 = s.table_of(l4, KVA, 2);
    assert_eq!(v.page_type(l1), PageType::L1);
    // Used as an L1 by the L2: cannot be pinned as an L2.
    assert_eq!(errno(v.pin(&mut s.mem, 2, l1)), -22);
    // Once the L2 entry is gone, the type count is 0 and the frame can change type.
    assert_eq!(mmu(&mut v, &mut s.mem, l2, table_index(KVA, 2), 0), 0);
    assert_eq!(v.page_type(l1), PageType::None);
    assert_eq!(info(&v, Mfn(200)).refs, 0);
    // Its entries now make the (zeroed) data frames L1 tables, as in Xen.
    assert_eq!(errno(v.pin(&mut s.mem, 2, l1)), 0);
    assert_eq!(v.page_type(l1), PageType::L2);
    assert_eq!(v.page_type(Mfn(200)), PageType::L1);
    check(&v, &s.mem);
}

#[test]
fn unpinning_releases_the_tree_recursively() {
    let (mut s, mut v, l4) = kernel_space();
    let tables = [
        s.table_of(l4, KVA, 3),
        s.table_of(l4, KVA, 2),
        s.table_of(l4, KVA, 1),
    ];
    let other = Mfn(150);
    v.pin(&mut s.mem, 4, other).unwrap();
    v.new_baseptr(&mut s.mem, other).unwrap();
    assert_eq!(v.page_type(l4), PageType::L4); // still pinned
    v.unpin(&mut s.mem, l4).unwrap();
    for t in [l4].iter().chain(&tables) {
        assert_eq!(info(&v, *t).ty, PageType::None, "mfn {t:?}");
        assert_eq!(info(&v, *t).refs, 0);
    }
    for d in (200..204).map(Mfn) {
        assert_eq!(info(&v, d).refs, 0);
    }
    check(&v, &s.mem);
}

#[test]
fn failed_validation_changes_nothing() {
    let mut mem = VecFrames::new(NR);
    // L2 30: slots 0..4 fresh L1s mapping data RW, slot 4 an L1 with a bad entry.
    for i in 0..5u64 {
        mem.write_entry(Mfn(30), i as usize, mk_pte(40 + i, PAGE_TABLE));
        mem.write_entry(Mfn(40 + i), 0, mk_pte(100 + i, PAGE_KERNEL));
        mem.write_entry(Mfn(40 + i), 1, mk_pte(120, PAGE_KERNEL_RO));
    }
    mem.write_entry(Mfn(44), 2, mk_pte(121, P | _PAGE_PCD));
    let mut v = v();
    v.pin(&mut mem, 1, Mfn(41)).unwrap(); // one child pre-existing with its own count
    let (frames, mut expect) = (v.frames_snapshot(), mem.clone());
    assert_eq!(errno(v.pin(&mut mem, 2, Mfn(30))), -22);
    assert_eq!(v.frames_snapshot(), frames);
    // Memory: like Xen, entries accepted before the failure keep the flags Xen
    // added (USER | GUEST_KERNEL on these kernel mappings): L1s 40, 42, 43 were
    // validated whole, 44 up to its bad slot 2; 41 was adjusted by its pin.
    for l1 in [40, 42, 43, 44].map(Mfn) {
        for slot in 0..2 {
            let e = expect.read_entry(l1, slot);
            expect.write_entry(l1, slot, e | _PAGE_USER | _PAGE_GUEST_KERNEL);
        }
    }
    assert!(mem == expect);
    check(&v, &mem);
}

#[test]
fn pte_update_takes_the_new_reference_before_dropping_the_old() {
    let (mut s, mut v, l4) = kernel_space();
    let l2 = s.table_of(l4, KVA, 2);
    let l1 = s.table_of(l4, KVA, 1);
    // L1 maps frame 210 RW; the L2 slot now holding l1 is rewritten to point at
    // 210 as an L1. Dropping the old entry first would free 210; Xen takes the new
    // reference first, which fails (210 is still mapped writable).
    assert_eq!(mmu(&mut v, &mut s.mem, l1, 9, mk_pte(210, PAGE_KERNEL)), 0);
    let before = (v.frames_snapshot(), s.mem.clone());
    assert_eq!(
        mmu(
            &mut v,
            &mut s.mem,
            l2,
            table_index(KVA, 2),
            mk_pte(210, PAGE_TABLE)
        ),
        -22
    );
    assert_eq!((v.frames_snapshot(), s.mem.clone()), before);
    // Re-pointing a slot at the same table keeps it validated (count never hits 0).
    assert_eq!(
        mmu(
            &mut v,
            &mut s.mem,
            l2,
            table_index(KVA, 2),
            l1.pte(P | _PAGE_ACCESSED)
        ),
        0
    );
    assert_eq!(
        (info(&v, l1).ty, info(&v, l1).type_count),
        (PageType::L1, 1)
    );
    check(&v, &s.mem);
}

#[test]
fn l1_mapping_a_pagetable_writable_fails_with_ebusy() {
    let mut mem = VecFrames::new(NR);
    let mut v = v();
    v.pin(&mut mem, 2, Mfn(30)).unwrap();
    mem.write_entry(Mfn(10), 0, mk_pte(30, PAGE_KERNEL));
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(10))), -16);
    let l = log(&mut v);
    assert!(
        l.contains("Could not get page type PGT_writable_page"),
        "{l}"
    );
    assert!(l.contains("Error -16 while pinning mfn 0000a"), "{l}");
    // Read-only it is fine.
    mem.write_entry(Mfn(10), 0, mk_pte(30, PAGE_KERNEL_RO));
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(10))), 0);
    assert_eq!(info(&v, Mfn(30)).refs, 2);
    check(&v, &mem);
}
