//! One test per Xen rule the validator implements. Expected values are Xen's
//! documented behaviour (arch/x86/mm.c), not read back from the validator.

mod common;

use common::{check, info, pte_ptr, Space};
use pagetable_validator::abi::MmuUpdate;
use pagetable_validator::pte::*;
use pagetable_validator::{
    GuestFrames, Mfn, PageType, Policy, Rules, Validator, VecFrames, _PAGE_GUEST_KERNEL,
    L1_DISALLOW_IO_PRIV,
};

const NR: u64 = 256;
const KVA: u64 = 0xffff_ffff_8000_0000;
const P: u64 = _PAGE_PRESENT;
const RW: u64 = _PAGE_RW;

fn v() -> Validator {
    Validator::new(NR, Policy::Enforce)
}

fn log(v: &mut Validator) -> String {
    v.drain_events()
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn errno<T>(r: Result<T, pagetable_validator::XenError>) -> i64 {
    r.err().map_or(0, |e| e.errno())
}

/// A pinned, current address space mapping data frames 200.. RO at KVA.
fn kernel_space() -> (Space, Validator, Mfn) {
    let mut s = Space::new(NR, 1);
    let l4 = s.alloc();
    for i in 0..4 {
        s.map(l4, KVA + i * PAGE_SIZE, 200 + i, PAGE_KERNEL_RO);
    }
    let mut v = v();
    v.register_initial(&mut s.mem, l4).unwrap();
    check(&v, &s.mem);
    v.drain_events();
    (s, v, l4)
}

fn mmu(v: &mut Validator, mem: &mut VecFrames, table: Mfn, slot: usize, val: u64) -> i64 {
    errno(v.mmu_update(
        mem,
        MmuUpdate {
            ptr: pte_ptr(table, slot),
            val,
        },
    ))
}

#[test]
fn l1_cache_attribute_flags_refused_for_domu_allowed_with_io_caps() {
    for (flag, name) in [(_PAGE_PCD, "10"), (_PAGE_PWT, "8"), (_PAGE_PAT, "80")] {
        let mut mem = VecFrames::new(NR);
        mem.write_entry(10, 3, mk_pte(20, P | RW | flag));
        let mut v = v();
        assert_eq!(errno(v.pin(&mut mem, 1, 10)), -22);
        assert!(log(&mut v).contains(&format!("Bad L1 flags {name}")));
        check(&v, &mem);
        let mut dom0 = Validator::with_rules(
            NR,
            Policy::Enforce,
            Rules {
                l1_disallow: L1_DISALLOW_IO_PRIV,
                ..Rules::default()
            },
        );
        assert_eq!(errno(dom0.pin(&mut mem, 1, 10)), 0);
        check(&dom0, &mem);
    }
    // GLOBAL, NX, AVAIL, USER are fine in L1 entries.
    let mut mem = VecFrames::new(NR);
    mem.write_entry(
        10,
        0,
        mk_pte(
            20,
            P | RW | _PAGE_GLOBAL | _PAGE_NX | _PAGE_AVAIL | _PAGE_USER,
        ),
    );
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 1, 10)), 0);
    // ... and an update adding a disallowed flag is refused before the fast path.
    let mut mem2 = mem.clone();
    assert_eq!(
        mmu(
            &mut v,
            &mut mem2,
            10,
            0,
            mk_pte(
                20,
                P | RW | _PAGE_PCD | _PAGE_GLOBAL | _PAGE_NX | _PAGE_AVAIL | _PAGE_USER
            )
        ),
        -22
    );
    assert_eq!(mem2, mem);
}

#[test]
fn superpages_and_bad_upper_level_flags_refused() {
    // L2 PSE (2 MiB page), L3 PSE (1 GiB page): "Bad L2/L3 flags 80".
    for (level, table) in [(2u32, 30u64), (3, 31)] {
        let mut mem = VecFrames::new(NR);
        mem.write_entry(table, 0, mk_pte(40, P | RW | _PAGE_PSE));
        let mut v = v();
        assert_eq!(errno(v.pin(&mut mem, level, table)), -22);
        assert!(log(&mut v).contains(&format!("Bad L{level} flags 80")));
        check(&v, &mem);
    }
    for flag in [_PAGE_GLOBAL, _PAGE_PCD, _PAGE_PWT] {
        let mut mem = VecFrames::new(NR);
        mem.write_entry(30, 0, mk_pte(40, PAGE_TABLE | flag));
        assert_eq!(errno(v().pin(&mut mem, 2, 30)), -22);
    }
    // USER, A/D, AVAIL, NX are allowed in L2 entries.
    let mut mem = VecFrames::new(NR);
    mem.write_entry(30, 0, mk_pte(40, PAGE_TABLE | _PAGE_NX | _PAGE_AVAIL));
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 2, 30)), 0);
    assert_eq!(v.page_type(40), PageType::L1);
    // Superpage through mmu_update into a validated L2.
    assert_eq!(
        mmu(&mut v, &mut mem, 30, 1, mk_pte(64, P | RW | _PAGE_PSE)),
        -22
    );
    check(&v, &mem);
}

#[test]
fn hypervisor_l4_slots_are_ignored_then_cleared() {
    let mut mem = VecFrames::new(NR);
    // Real Xen 4.17 pins an L4 with a present (even RW) entry in slots 256..=271
    // (rc 0, the xen-rules scenario): it ignores them and installs its own
    // mappings. We clear them; the frame they named gets no reference.
    mem.write_entry(50, 256, mk_pte(51, PAGE_TABLE));
    mem.write_entry(50, 271, 0xdead_0000);
    mem.write_entry(50, 0, mk_pte(52, PAGE_TABLE));
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 4, 50)), 0);
    assert_eq!(info(&v, 51).refs, 0);
    assert_eq!(v.page_type(51), PageType::None);
    assert_eq!((mem.read_entry(50, 256), mem.read_entry(50, 271)), (0, 0));
    assert_eq!(v.page_type(52), PageType::L3);
    // mmu_update into them is refused even for an empty value; slot 272 is the guest's.
    log(&mut v);
    assert_eq!(mmu(&mut v, &mut mem, 50, 0x104, 0), -22);
    assert!(
        log(&mut v).contains("arch/x86/mm.c:2389:d0v0 L4 update in Xen-private area, slot 0x104")
    );
    assert_eq!(mmu(&mut v, &mut mem, 50, 271, mk_pte(51, PAGE_TABLE)), -22);
    assert_eq!(mmu(&mut v, &mut mem, 50, 272, mk_pte(51, PAGE_TABLE)), 0);
    assert_eq!(v.page_type(51), PageType::L3);
    check(&v, &mem);
    // A failed validation leaves the slots alone (Xen fills them only on success).
    let mut mem = VecFrames::new(NR);
    mem.write_entry(60, 256, mk_pte(51, PAGE_TABLE));
    mem.write_entry(60, 300, mk_pte(NR + 1, PAGE_TABLE));
    let mut v = self::v();
    assert_eq!(errno(v.pin(&mut mem, 4, 60)), -22);
    assert_eq!(mem.read_entry(60, 256), mk_pte(51, PAGE_TABLE));
    check(&v, &mem);
}

#[test]
fn frames_outside_the_domain_are_refused() {
    let mut mem = VecFrames::new(NR);
    mem.write_entry(10, 0, mk_pte(NR + 5, P));
    let mut v = v();
    // L1: unprivileged attempt to map MMIO space.
    assert_eq!(errno(v.pin(&mut mem, 1, 10)), -1);
    assert!(log(&mut v).contains("non-privileged attempt to map MMIO space"));
    mem.write_entry(30, 0, mk_pte(NR + 5, PAGE_TABLE));
    assert_eq!(errno(v.pin(&mut mem, 2, 30)), -22);
    assert_eq!(errno(v.pin(&mut mem, 1, NR)), -22);
    assert_eq!(errno(v.unpin(&mut mem, NR + 100)), -22);
    assert_eq!(errno(v.new_baseptr(&mut mem, u64::MAX)), -22);
    assert_eq!(mmu(&mut v, &mut mem, NR, 0, 0), -22);
    assert_eq!(
        errno(v.mmu_update(&mut mem, MmuUpdate { ptr: !7, val: 0 })),
        -22
    );
    check(&v, &mem);
}

#[test]
fn linear_pagetables_read_only_and_not_chained() {
    // A read-only self map is fine and takes no reference.
    let mut mem = VecFrames::new(NR);
    mem.write_entry(50, 510, mk_pte(50, P | _PAGE_ACCESSED));
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 4, 50)), 0);
    assert_eq!((info(&v, 50).refs, info(&v, 50).type_count), (1, 1));
    check(&v, &mem);
    // Writable self map: refused.
    mem.write_entry(52, 510, mk_pte(52, P | RW));
    assert_eq!(errno(v.pin(&mut mem, 4, 52)), -22);
    assert!(log(&mut v).contains("Attempt to create linear p.t. with write perms"));
    // Another L4 mapping the pinned L4 50 read-only: a linear entry.
    mem.write_entry(53, 0, mk_pte(50, P));
    assert_eq!(errno(v.pin(&mut mem, 4, 53)), 0);
    assert_eq!(
        (
            info(&v, 50).type_count,
            info(&v, 50).linear,
            info(&v, 53).linear
        ),
        (2, -1, 1)
    );
    // 53 holds linear entries, so it cannot itself be a linear target.
    mem.write_entry(54, 0, mk_pte(53, P));
    assert_eq!(errno(v.pin(&mut mem, 4, 54)), -22);
    // 50 is a linear target, so it cannot get linear entries.
    assert_eq!(mmu(&mut v, &mut mem, 50, 1, mk_pte(53, P)), -22);
    check(&v, &mem);
    // The linear reference keeps 50 validated after its unpin; unpinning 53 frees both.
    v.unpin(&mut mem, 50).unwrap();
    assert_eq!(v.page_type(50), PageType::L4);
    v.unpin(&mut mem, 53).unwrap();
    assert_eq!(v.page_type(50), PageType::None);
    assert_eq!(info(&v, 50).linear, 0);
    check(&v, &mem);
    // Disabled by pv-linear-pt=0.
    let mut off = Validator::with_rules(
        NR,
        Policy::Enforce,
        Rules {
            linear_pt: false,
            ..Rules::default()
        },
    );
    assert_eq!(errno(off.pin(&mut mem, 4, 50)), -22);
    assert!(log(&mut off).contains("feature disabled"));
}

#[test]
fn l2_linear_entry_to_a_validated_l2() {
    let mut mem = VecFrames::new(NR);
    mem.write_entry(30, 0, mk_pte(40, PAGE_TABLE));
    mem.write_entry(31, 5, mk_pte(30, P | _PAGE_USER));
    let mut v = v();
    v.pin(&mut mem, 2, 30).unwrap();
    assert_eq!(errno(v.pin(&mut mem, 2, 31)), 0);
    assert_eq!(info(&v, 30).type_count, 2);
    // The same entry writable: refused.
    mem.write_entry(32, 5, mk_pte(30, PAGE_TABLE));
    assert_eq!(errno(v.pin(&mut mem, 2, 32)), -22);
    check(&v, &mem);
}

#[test]
fn pin_unpin_error_codes() {
    let mut mem = VecFrames::new(NR);
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 1, 10)), 0);
    // PIN_L2 over a pinned L1: "Bad type" -22.
    log(&mut v);
    assert_eq!(errno(v.pin(&mut mem, 2, 10)), -22);
    let l = log(&mut v);
    assert!(
        l.contains("Bad type (saw 2c00000000000001 != exp 4000000000000000) for mfn 0000a"),
        "{l}"
    );
    assert!(l.contains("Error -22 while pinning mfn 0000a"));
    assert_eq!(errno(v.unpin(&mut mem, 11)), -22);
    assert!(log(&mut v).contains("mfn 0000b not pinned"));
    assert_eq!(errno(v.pin(&mut mem, 0, 11)), -22);
    assert_eq!(errno(v.pin(&mut mem, 5, 11)), -22);
    v.unpin(&mut mem, 10).unwrap();
    assert_eq!(v.page_type(10), PageType::None);
    assert_eq!(info(&v, 10).refs, 0);
    mem.write_entry(12, 0, 0);
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
    assert_eq!(info(&v, 200).refs, 0);
    // Its entries now make the (zeroed) data frames L1 tables, as in Xen.
    assert_eq!(errno(v.pin(&mut s.mem, 2, l1)), 0);
    assert_eq!(v.page_type(l1), PageType::L2);
    assert_eq!(v.page_type(200), PageType::L1);
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
    let other = 150;
    v.pin(&mut s.mem, 4, other).unwrap();
    v.new_baseptr(&mut s.mem, other).unwrap();
    assert_eq!(v.page_type(l4), PageType::L4); // still pinned
    v.unpin(&mut s.mem, l4).unwrap();
    for t in [l4].iter().chain(&tables) {
        assert_eq!(info(&v, *t).ty, PageType::None, "mfn {t}");
        assert_eq!(info(&v, *t).refs, 0);
    }
    for d in 200..204 {
        assert_eq!(info(&v, d).refs, 0);
    }
    check(&v, &s.mem);
}

#[test]
fn failed_validation_changes_nothing() {
    let mut mem = VecFrames::new(NR);
    // L2 30: slots 0..4 fresh L1s mapping data RW, slot 4 an L1 with a bad entry.
    for i in 0..5u64 {
        mem.write_entry(30, i as usize, mk_pte(40 + i, PAGE_TABLE));
        mem.write_entry(40 + i, 0, mk_pte(100 + i, PAGE_KERNEL));
        mem.write_entry(40 + i, 1, mk_pte(120, PAGE_KERNEL_RO));
    }
    mem.write_entry(44, 2, mk_pte(121, P | _PAGE_PCD));
    let mut v = v();
    v.pin(&mut mem, 1, 41).unwrap(); // one child pre-existing with its own count
    let (frames, mut expect) = (v.frames_snapshot(), mem.clone());
    assert_eq!(errno(v.pin(&mut mem, 2, 30)), -22);
    assert_eq!(v.frames_snapshot(), frames);
    // Memory: like Xen, entries accepted before the failure keep the flags Xen
    // added (USER | GUEST_KERNEL on these kernel mappings): L1s 40, 42, 43 were
    // validated whole, 44 up to its bad slot 2; 41 was adjusted by its pin.
    for l1 in [40, 42, 43, 44] {
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
            mk_pte(l1, P | _PAGE_ACCESSED)
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
    assert_eq!(info(&v, 200).refs, 1);
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
    assert_eq!(info(&v, 205).refs, 1);
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
    assert_eq!(errno(v.pin(&mut s.mem, 1, 200)), 0);
    let ev = v.drain_events();
    assert_eq!(ev[0].summary(), "pin_l1 mfn 000c8 (pfn 00777) = 0");
    // A frame that is not a pagetable is written plainly.
    assert_eq!(mmu(&mut v, &mut s.mem, 220, 7, 0x1234), 0);
    assert_eq!(s.mem.read_entry(220, 7), 0x1234);
    assert_eq!(info(&v, 220).refs, 0);
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
    assert_eq!(v.page_type(210), PageType::Writable);
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
    assert_eq!(v.page_type(230), PageType::Writable);
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
    let mut s2 = Space::new(NR, 100);
    let b = s2.alloc();
    s2.map(b, 0x40_0000, 240, PAGE_KERNEL);
    let mut mem = s.mem.clone();
    for m in 100..110 {
        for slot in 0..512 {
            let e = s2.mem.read_entry(m, slot);
            if e != 0 {
                mem.write_entry(m, slot, e);
            }
        }
    }
    assert_eq!(errno(v.new_baseptr(&mut mem, b)), 0);
    assert_eq!(v.page_type(240), PageType::Writable);
    assert_eq!(errno(v.new_baseptr(&mut mem, l4)), 0);
    assert_eq!(v.page_type(b), PageType::None);
    assert_eq!(v.page_type(240), PageType::None);
    check(&v, &mem);
}

#[test]
fn l1_mapping_a_pagetable_writable_fails_with_ebusy() {
    let mut mem = VecFrames::new(NR);
    let mut v = v();
    v.pin(&mut mem, 2, 30).unwrap();
    mem.write_entry(10, 0, mk_pte(30, PAGE_KERNEL));
    assert_eq!(errno(v.pin(&mut mem, 1, 10)), -16);
    let l = log(&mut v);
    assert!(
        l.contains("Could not get page type PGT_writable_page"),
        "{l}"
    );
    assert!(l.contains("Error -16 while pinning mfn 0000a"), "{l}");
    // Read-only it is fine.
    mem.write_entry(10, 0, mk_pte(30, PAGE_KERNEL_RO));
    assert_eq!(errno(v.pin(&mut mem, 1, 10)), 0);
    assert_eq!(info(&v, 30).refs, 2);
    check(&v, &mem);
}

#[test]
fn smaller_guest_memory_is_an_error_not_a_panic() {
    let mut mem = VecFrames::new(NR - 1);
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 1, 3)), -22);
}

#[test]
fn validation_rewrites_entries_like_xen_and_warns_about_global_kernel_pages() {
    // Xen's adjust_guest_l1e (arch/x86/pv/mm.h, 4.17) on a pinned L1: kernel entry
    // + USER|GUEST_KERNEL, user entry + GLOBAL, guest-set GUEST_KERNEL|GLOBAL kept
    // (+ USER) with a warning; a not-present entry untouched.
    let mut mem = VecFrames::new(NR);
    let gk = _PAGE_GUEST_KERNEL;
    mem.write_entry(10, 0, mk_pte(100, P | _PAGE_NX));
    mem.write_entry(10, 1, mk_pte(101, P | _PAGE_USER));
    mem.write_entry(10, 2, mk_pte(102, P | gk | _PAGE_GLOBAL));
    mem.write_entry(10, 3, mk_pte(103, RW));
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 1, 10)), 0);
    assert_eq!(
        mem.read_entry(10, 0),
        mk_pte(100, P | _PAGE_NX | _PAGE_USER | gk)
    );
    assert_eq!(
        mem.read_entry(10, 1),
        mk_pte(101, P | _PAGE_USER | _PAGE_GLOBAL)
    );
    assert_eq!(
        mem.read_entry(10, 2),
        mk_pte(102, P | gk | _PAGE_GLOBAL | _PAGE_USER)
    );
    assert_eq!(mem.read_entry(10, 3), mk_pte(103, RW));
    assert!(log(&mut v).contains("arch/x86/pv/mm.h:98:d0v0 Global bit is set in kernel page 66"));
    // Re-pinning finds everything rewritten already; the warning stays (the value
    // still has both bits, as Xen would see it again).
    v.unpin(&mut mem, 10).unwrap();
    assert_eq!(errno(v.pin(&mut mem, 1, 10)), 0);
    assert!(log(&mut v).contains("Global bit is set in kernel page 66"));
    check(&v, &mem);
    // A failed L1 validation leaves the entries before the bad slot rewritten.
    mem.write_entry(11, 0, mk_pte(104, P));
    mem.write_entry(11, 1, mk_pte(NR + 3, P));
    mem.write_entry(11, 2, mk_pte(105, P));
    assert_eq!(errno(v.pin(&mut mem, 1, 11)), -1);
    assert_eq!(mem.read_entry(11, 0), mk_pte(104, P | _PAGE_USER | gk));
    assert_eq!(mem.read_entry(11, 2), mk_pte(105, P));
    assert_eq!(info(&v, 104).refs, 0);
    check(&v, &mem);
}
