//! What a table entry may hold, and how validation rewrites it.

use super::*;

#[test]
fn l1_cache_attribute_flags_refused_for_domu_allowed_with_io_caps() {
    for (flag, name) in [(_PAGE_PCD, "10"), (_PAGE_PWT, "8"), (_PAGE_PAT, "80")] {
        let mut mem = VecFrames::new(NR);
        mem.write_entry(Mfn(10), 3, mk_pte(20, P | RW | flag));
        let mut v = v();
        assert_eq!(errno(v.pin(&mut mem, 1, Mfn(10))), -22);
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
        assert_eq!(errno(dom0.pin(&mut mem, 1, Mfn(10))), 0);
        check(&dom0, &mem);
    }
    // GLOBAL, NX, AVAIL, USER are fine in L1 entries.
    let mut mem = VecFrames::new(NR);
    mem.write_entry(
        Mfn(10),
        0,
        mk_pte(
            20,
            P | RW | _PAGE_GLOBAL | _PAGE_NX | _PAGE_AVAIL | _PAGE_USER,
        ),
    );
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(10))), 0);
    // ... and an update adding a disallowed flag is refused before the fast path.
    let mut mem2 = mem.clone();
    assert_eq!(
        mmu(
            &mut v,
            &mut mem2,
            Mfn(10),
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
    for (level, table) in [(2u32, Mfn(30)), (3, Mfn(31))] {
        let mut mem = VecFrames::new(NR);
        mem.write_entry(table, 0, mk_pte(40, P | RW | _PAGE_PSE));
        let mut v = v();
        assert_eq!(errno(v.pin(&mut mem, level, table)), -22);
        assert!(log(&mut v).contains(&format!("Bad L{level} flags 80")));
        check(&v, &mem);
    }
    for flag in [_PAGE_GLOBAL, _PAGE_PCD, _PAGE_PWT] {
        let mut mem = VecFrames::new(NR);
        mem.write_entry(Mfn(30), 0, mk_pte(40, PAGE_TABLE | flag));
        assert_eq!(errno(v().pin(&mut mem, 2, Mfn(30))), -22);
    }
    // USER, A/D, AVAIL, NX are allowed in L2 entries.
    let mut mem = VecFrames::new(NR);
    mem.write_entry(Mfn(30), 0, mk_pte(40, PAGE_TABLE | _PAGE_NX | _PAGE_AVAIL));
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 2, Mfn(30))), 0);
    assert_eq!(v.page_type(Mfn(40)), PageType::L1);
    // Superpage through mmu_update into a validated L2.
    assert_eq!(
        mmu(&mut v, &mut mem, Mfn(30), 1, mk_pte(64, P | RW | _PAGE_PSE)),
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
    mem.write_entry(Mfn(50), 256, mk_pte(51, PAGE_TABLE));
    mem.write_entry(Mfn(50), 271, 0xdead_0000);
    mem.write_entry(Mfn(50), 0, mk_pte(52, PAGE_TABLE));
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 4, Mfn(50))), 0);
    assert_eq!(info(&v, Mfn(51)).refs, 0);
    assert_eq!(v.page_type(Mfn(51)), PageType::None);
    assert_eq!(
        (mem.read_entry(Mfn(50), 256), mem.read_entry(Mfn(50), 271)),
        (0, 0)
    );
    assert_eq!(v.page_type(Mfn(52)), PageType::L3);
    // mmu_update into them is refused even for an empty value; slot 272 is the guest's.
    log(&mut v);
    assert_eq!(mmu(&mut v, &mut mem, Mfn(50), 0x104, 0), -22);
    assert!(
        log(&mut v).contains("arch/x86/mm.c:2389:d0v0 L4 update in Xen-private area, slot 0x104")
    );
    assert_eq!(
        mmu(&mut v, &mut mem, Mfn(50), 271, mk_pte(51, PAGE_TABLE)),
        -22
    );
    assert_eq!(
        mmu(&mut v, &mut mem, Mfn(50), 272, mk_pte(51, PAGE_TABLE)),
        0
    );
    assert_eq!(v.page_type(Mfn(51)), PageType::L3);
    check(&v, &mem);
    // A failed validation leaves the slots alone (Xen fills them only on success).
    let mut mem = VecFrames::new(NR);
    mem.write_entry(Mfn(60), 256, mk_pte(51, PAGE_TABLE));
    mem.write_entry(Mfn(60), 300, mk_pte(NR + 1, PAGE_TABLE));
    let mut v = self::v();
    assert_eq!(errno(v.pin(&mut mem, 4, Mfn(60))), -22);
    assert_eq!(mem.read_entry(Mfn(60), 256), mk_pte(51, PAGE_TABLE));
    check(&v, &mem);
}

#[test]
fn frames_outside_the_domain_are_refused() {
    let mut mem = VecFrames::new(NR);
    mem.write_entry(Mfn(10), 0, mk_pte(NR + 5, P));
    let mut v = v();
    // L1: unprivileged attempt to map MMIO space.
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(10))), -1);
    assert!(log(&mut v).contains("non-privileged attempt to map MMIO space"));
    mem.write_entry(Mfn(30), 0, mk_pte(NR + 5, PAGE_TABLE));
    assert_eq!(errno(v.pin(&mut mem, 2, Mfn(30))), -22);
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(NR))), -22);
    assert_eq!(errno(v.unpin(&mut mem, Mfn(NR + 100))), -22);
    assert_eq!(errno(v.new_baseptr(&mut mem, Mfn(u64::MAX))), -22);
    assert_eq!(mmu(&mut v, &mut mem, Mfn(NR), 0, 0), -22);
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
    mem.write_entry(Mfn(50), 510, mk_pte(50, P | _PAGE_ACCESSED));
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 4, Mfn(50))), 0);
    assert_eq!(
        (info(&v, Mfn(50)).refs, info(&v, Mfn(50)).type_count),
        (1, 1)
    );
    check(&v, &mem);
    // Writable self map: refused.
    mem.write_entry(Mfn(52), 510, mk_pte(52, P | RW));
    assert_eq!(errno(v.pin(&mut mem, 4, Mfn(52))), -22);
    assert!(log(&mut v).contains("Attempt to create linear p.t. with write perms"));
    // Another L4 mapping the pinned L4 50 read-only: a linear entry.
    mem.write_entry(Mfn(53), 0, mk_pte(50, P));
    assert_eq!(errno(v.pin(&mut mem, 4, Mfn(53))), 0);
    assert_eq!(
        (
            info(&v, Mfn(50)).type_count,
            info(&v, Mfn(50)).linear,
            info(&v, Mfn(53)).linear
        ),
        (2, -1, 1)
    );
    // 53 holds linear entries, so it cannot itself be a linear target.
    mem.write_entry(Mfn(54), 0, mk_pte(53, P));
    assert_eq!(errno(v.pin(&mut mem, 4, Mfn(54))), -22);
    // 50 is a linear target, so it cannot get linear entries.
    assert_eq!(mmu(&mut v, &mut mem, Mfn(50), 1, mk_pte(53, P)), -22);
    check(&v, &mem);
    // The linear reference keeps 50 validated after its unpin; unpinning 53 frees both.
    v.unpin(&mut mem, Mfn(50)).unwrap();
    assert_eq!(v.page_type(Mfn(50)), PageType::L4);
    v.unpin(&mut mem, Mfn(53)).unwrap();
    assert_eq!(v.page_type(Mfn(50)), PageType::None);
    assert_eq!(info(&v, Mfn(50)).linear, 0);
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
    assert_eq!(errno(off.pin(&mut mem, 4, Mfn(50))), -22);
    assert!(log(&mut off).contains("feature disabled"));
}

#[test]
fn l2_linear_entry_to_a_validated_l2() {
    let mut mem = VecFrames::new(NR);
    mem.write_entry(Mfn(30), 0, mk_pte(40, PAGE_TABLE));
    mem.write_entry(Mfn(31), 5, mk_pte(30, P | _PAGE_USER));
    let mut v = v();
    v.pin(&mut mem, 2, Mfn(30)).unwrap();
    assert_eq!(errno(v.pin(&mut mem, 2, Mfn(31))), 0);
    assert_eq!(info(&v, Mfn(30)).type_count, 2);
    // The same entry writable: refused.
    mem.write_entry(Mfn(32), 5, mk_pte(30, PAGE_TABLE));
    assert_eq!(errno(v.pin(&mut mem, 2, Mfn(32))), -22);
    check(&v, &mem);
}

#[test]
fn smaller_guest_memory_is_an_error_not_a_panic() {
    let mut mem = VecFrames::new(NR - 1);
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(3))), -22);
}

#[test]
fn validation_rewrites_entries_like_xen_and_warns_about_global_kernel_pages() {
    // Xen's adjust_guest_l1e (arch/x86/pv/mm.h, 4.17) on a pinned L1: kernel entry
    // + USER|GUEST_KERNEL, user entry + GLOBAL, guest-set GUEST_KERNEL|GLOBAL kept
    // (+ USER) with a warning; a not-present entry untouched.
    let mut mem = VecFrames::new(NR);
    let gk = _PAGE_GUEST_KERNEL;
    mem.write_entry(Mfn(10), 0, mk_pte(100, P | _PAGE_NX));
    mem.write_entry(Mfn(10), 1, mk_pte(101, P | _PAGE_USER));
    mem.write_entry(Mfn(10), 2, mk_pte(102, P | gk | _PAGE_GLOBAL));
    mem.write_entry(Mfn(10), 3, mk_pte(103, RW));
    let mut v = v();
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(10))), 0);
    assert_eq!(
        mem.read_entry(Mfn(10), 0),
        mk_pte(100, P | _PAGE_NX | _PAGE_USER | gk)
    );
    assert_eq!(
        mem.read_entry(Mfn(10), 1),
        mk_pte(101, P | _PAGE_USER | _PAGE_GLOBAL)
    );
    assert_eq!(
        mem.read_entry(Mfn(10), 2),
        mk_pte(102, P | gk | _PAGE_GLOBAL | _PAGE_USER)
    );
    assert_eq!(mem.read_entry(Mfn(10), 3), mk_pte(103, RW));
    assert!(log(&mut v).contains("arch/x86/pv/mm.h:98:d0v0 Global bit is set in kernel page 66"));
    // Re-pinning finds everything rewritten already; the warning stays (the value
    // still has both bits, as Xen would see it again).
    v.unpin(&mut mem, Mfn(10)).unwrap();
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(10))), 0);
    assert!(log(&mut v).contains("Global bit is set in kernel page 66"));
    check(&v, &mem);
    // A failed L1 validation leaves the entries before the bad slot rewritten.
    mem.write_entry(Mfn(11), 0, mk_pte(104, P));
    mem.write_entry(Mfn(11), 1, mk_pte(NR + 3, P));
    mem.write_entry(Mfn(11), 2, mk_pte(105, P));
    assert_eq!(errno(v.pin(&mut mem, 1, Mfn(11))), -1);
    assert_eq!(mem.read_entry(Mfn(11), 0), mk_pte(104, P | _PAGE_USER | gk));
    assert_eq!(mem.read_entry(Mfn(11), 2), mk_pte(105, P));
    assert_eq!(info(&v, Mfn(104)).refs, 0);
    check(&v, &mem);
}
