//! The hypercall commands: mmu_update, update_va_mapping, mmuext new_baseptr.

use super::*;

#[test]
fn mmu_update_commands_fast_path_and_preserve_ad() {
    let (mut s, mut v, l4) = kernel_space();
    let l1 = s.table_of(l4, KVA, 1);
    // The CPU sets A/D in the live entry (not a validated change).
    let e0 = s.mem.read_entry(l1, 0);
    s.mem.write_entry(l1, 0, e0 | _PAGE_ACCESSED | _PAGE_DIRTY);
    let new = mk_pte(200, P | _PAGE_NX);
    let ptr = pte_ptr(l1, 0) | 2; // MMU_PT_UPDATE_PRESERVE_AD
    assert_eq!(
        errno(v.mmu_update(&mut s.mem, MmuUpdate { ptr, val: new })),
        0
    );
    // Stored as Xen adjusts a kernel L1 entry: + USER | GUEST_KERNEL.
    let stored = new | _PAGE_USER | _PAGE_GUEST_KERNEL;
    assert_eq!(
        s.mem.read_entry(l1, 0),
        stored | _PAGE_ACCESSED | _PAGE_DIRTY
    );
    assert_eq!(mmu(&mut v, &mut s.mem, l1, 0, new), 0);
    assert_eq!(s.mem.read_entry(l1, 0), stored);
    assert_eq!(info(&v, Mfn(200)).refs, 1);
    // MMU_PT_UPDATE_NO_TRANSLATE (3) acts as a normal update for PV.
    assert_eq!(
        errno(v.mmu_update(
            &mut s.mem,
            MmuUpdate {
                ptr: pte_ptr(l1, 5) | 3,
                val: mk_pte(205, P)
            }
        )),
        0
    );
    assert_eq!(info(&v, Mfn(205)).refs, 1);
    // Commands 4..7: -ENOSYS.
    assert_eq!(
        errno(v.mmu_update(
            &mut s.mem,
            MmuUpdate {
                ptr: pte_ptr(l1, 0) | 4,
                val: 0
            }
        )),
        -38
    );
    // MMU_MACHPHYS_UPDATE sets the m2p used in logs.
    assert_eq!(
        errno(v.mmu_update(
            &mut s.mem,
            MmuUpdate {
                ptr: (200 << 12) | 1,
                val: 0x777
            }
        )),
        0
    );
    v.drain_events();
    assert_eq!(errno(v.pin(&mut s.mem, 1, Mfn(200))), 0);
    let ev = v.drain_events();
    assert_eq!(ev[0].summary(), "pin_l1 mfn 000c8 (pfn 00777) = 0");
    // A frame that is not a pagetable is written plainly.
    assert_eq!(mmu(&mut v, &mut s.mem, Mfn(220), 7, 0x1234), 0);
    assert_eq!(s.mem.read_entry(Mfn(220), 7), 0x1234);
    assert_eq!(info(&v, Mfn(220)).refs, 0);
    check(&v, &s.mem);
}

#[test]
fn batch_stops_at_first_failure() {
    let (mut s, mut v, l4) = kernel_space();
    let l1 = s.table_of(l4, KVA, 1);
    let reqs = [
        MmuUpdate {
            ptr: pte_ptr(l1, 10),
            val: mk_pte(210, PAGE_KERNEL),
        },
        MmuUpdate {
            ptr: pte_ptr(l1, 11),
            val: mk_pte(211, P | _PAGE_PCD),
        },
        MmuUpdate {
            ptr: pte_ptr(l1, 12),
            val: mk_pte(212, PAGE_KERNEL),
        },
    ];
    let (done, res) = v.mmu_update_batch(&mut s.mem, &reqs);
    assert_eq!((done, res.map_err(|e| e.errno())), (1, Err(-22)));
    assert_eq!(s.mem.read_entry(l1, 12), 0);
    assert_eq!(v.page_type(Mfn(210)), PageType::Writable);
    check(&v, &s.mem);
}

#[test]
fn update_va_mapping_resolves_through_the_current_base() {
    let mut mem = VecFrames::new(NR);
    let mut v = v();
    assert_eq!(errno(v.update_va_mapping(&mut mem, KVA, 0, 0)), -22); // no base
    let (mut s, mut v, _l4) = kernel_space();
    assert_eq!(
        errno(v.update_va_mapping(&mut s.mem, KVA + 5 * PAGE_SIZE, mk_pte(230, PAGE_KERNEL), 2)),
        0
    );
    assert_eq!(v.page_type(Mfn(230)), PageType::Writable);
    // Hypervisor hole, non-canonical, and unmapped L2 ranges: no L1 -> -22.
    for va in [
        0xffff_8000_0000_0000,
        0x0000_8000_0000_0000,
        KVA + (1 << 30),
        0x1000,
    ] {
        assert_eq!(
            errno(v.update_va_mapping(&mut s.mem, va, 0, 0)),
            -22,
            "va {va:x}"
        );
    }
    check(&v, &s.mem);
}

#[test]
fn new_baseptr_requires_an_l4_and_drops_the_old_base() {
    let (mut s, mut v, l4) = kernel_space();
    let l1 = s.table_of(l4, KVA, 1);
    assert_eq!(errno(v.new_baseptr(&mut s.mem, l1)), -22);
    assert!(log(&mut v).contains("Error while installing new baseptr"));
    assert_eq!(errno(v.new_baseptr(&mut s.mem, l4)), 0); // same base: no-op
    assert_eq!(info(&v, l4).type_count, 2);
    // An unpinned L4 as base, then switching away devalidates it.
    let mut s2 = Space::new(NR, Mfn(100));
    let b = s2.alloc();
    s2.map(b, 0x40_0000, Mfn(240), PAGE_KERNEL);
    let mut mem = s.mem.clone();
    for m in (100..110).map(Mfn) {
        for slot in 0..512 {
            let e = s2.mem.read_entry(m, slot);
            if e != 0 {
                mem.write_entry(m, slot, e);
            }
        }
    }
    assert_eq!(errno(v.new_baseptr(&mut mem, b)), 0);
    assert_eq!(v.page_type(Mfn(240)), PageType::Writable);
    assert_eq!(errno(v.new_baseptr(&mut mem, l4)), 0);
    assert_eq!(v.page_type(b), PageType::None);
    assert_eq!(v.page_type(Mfn(240)), PageType::None);
    check(&v, &mem);
}
