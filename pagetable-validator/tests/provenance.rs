//! Provenance of stray writable mappings: the L1 slot, the exact VA and its
//! region, through the current base and pinned L4s; plus the audit policy.

mod common;

use common::{check, info, Space};
use pagetable_validator::pte::layout::*;
use pagetable_validator::pte::*;
use pagetable_validator::{
    Event, GuestFrames, Mfn, PageType, Policy, Region, Validator, ViolationKind, _PAGE_GUEST_KERNEL,
};

const NR: u64 = 512;
/// The page that will become a pagetable (pfn 0x203 in the logs).
const PAGE: Mfn = Mfn(300);
const PAGE_PFN: u64 = 0x203;
const VMAP_VA: u64 = VMALLOC_BASE + 0x11000;
const PKMAP_VA: u64 = PKMAP_BASE + 5 * PAGE_SIZE;

struct World {
    s: Space,
    v: Validator,
    l4: Mfn,
    user_l4: Mfn,
}

/// Kernel L4 (current base) + a process L4 sharing the kernel half (pinned).
/// PAGE is mapped RO in the direct map, RW through a vmalloc L1 (slot 17) and RW
/// through the pkmap L1 (slot 5).
fn world(policy: Policy) -> World {
    let mut s = Space::new(NR, Mfn(1));
    let l4 = s.alloc();
    s.map(
        l4,
        DIRECT_MAP_BASE + PAGE_PFN * PAGE_SIZE,
        PAGE,
        PAGE_KERNEL_RO,
    );
    s.map(l4, VMAP_VA, PAGE, PAGE_KERNEL);
    s.map(l4, PKMAP_VA, PAGE, PAGE_KERNEL);
    s.map(l4, KERNEL_BASE, Mfn(400), PAGE_KERNEL_RO);
    let user_l4 = s.alloc();
    for slot in 256..512 {
        let e = s.mem.read_entry(l4, slot);
        s.mem.write_entry(user_l4, slot, e);
    }
    s.map(user_l4, 0x40_0000, Mfn(401), PAGE_KERNEL);
    let mut v = Validator::new(NR, policy);
    v.set_regions(Region::default_layout());
    let mut m2p = vec![u64::MAX; NR as usize];
    m2p[PAGE.0 as usize] = PAGE_PFN;
    v.set_m2p(m2p);
    v.register_initial(&mut s.mem, l4).unwrap();
    v.pin(&mut s.mem, 4, user_l4).unwrap();
    v.drain_events();
    check(&v, &s.mem);
    World { s, v, l4, user_l4 }
}

fn one(v: &mut Validator) -> Event {
    let mut ev = v.drain_events();
    assert_eq!(ev.len(), 1);
    ev.remove(0)
}

#[test]
fn stray_vmalloc_mapping_reported_with_exact_va_and_region() {
    let mut w = world(Policy::Enforce);
    let vmap_l1 = w.s.table_of(w.l4, VMAP_VA, 1);
    let pkmap_l1 = w.s.table_of(w.l4, PKMAP_VA, 1);
    // Remove the pkmap alias first (as kmap_flush_unused would).
    w.v.update_va_mapping(&mut w.s.mem, PKMAP_VA, 0, 0).unwrap();
    w.v.drain_events();

    let rc = w.v.pin(&mut w.s.mem, 1, PAGE).map_err(|e| e.errno());
    assert_eq!(rc, Err(-22));
    let ev = one(&mut w.v);
    assert_eq!(ev.rc, -22);
    assert_eq!(ev.violations.len(), 1);
    let vi = &ev.violations[0];
    assert_eq!(
        (vi.kind, vi.frame, vi.had, vi.wanted),
        (
            ViolationKind::StrayWritable,
            PAGE,
            PageType::Writable,
            PageType::L1
        )
    );
    assert_eq!(vi.mappings.len(), 1);
    let m = &vi.mappings[0];
    assert_eq!(
        (m.l1, m.slot, m.pte),
        // The entry as validation left it: Xen adds USER | GUEST_KERNEL to a kernel mapping.
        (
            vmap_l1,
            17,
            PAGE.pte(PAGE_KERNEL | _PAGE_USER | _PAGE_GUEST_KERNEL)
        )
    );
    // Reachable through both L4s at the same VA: listed once, via the current base.
    assert_eq!(m.vas.len(), 1);
    assert_eq!(m.vas[0].va, 0xffff_c900_0001_1000);
    assert_eq!(m.vas[0].region.as_deref(), Some("vmalloc"));
    assert_eq!(m.vas[0].root, w.l4);
    let text = ev.to_string();
    assert!(
        text.contains(&format!(
            "provenance: mfn 0012c (pfn 00203) still mapped RW by L1 mfn {vmap_l1:x} slot 17 at va ffffc90000011000 [vmalloc]"
        )),
        "{text}"
    );
    assert!(text.starts_with("arch/x86/mm.c:2940:d0v0 Bad type (saw e400000000000001 != exp 2000000000000000) for mfn 0012c (pfn 00203)"));
    // JSON Lines form.
    let j = serde_json::to_value(&ev).unwrap();
    assert_eq!(j["event"], "pin");
    assert_eq!(j["rc"], -22);
    assert_eq!(j["violations"][0]["kind"], "stray_writable");
    assert_eq!(
        j["violations"][0]["mappings"][0]["vas"][0]["region"],
        "vmalloc"
    );
    assert_eq!(
        j["violations"][0]["mappings"][0]["vas"][0]["va"],
        0xffff_c900_0001_1000u64
    );
    let _ = pkmap_l1;
    check(&w.v, &w.s.mem);
}

#[test]
fn every_writable_alias_is_listed() {
    let mut w = world(Policy::Enforce);
    assert!(w.v.pin(&mut w.s.mem, 1, PAGE).is_err());
    let ev = one(&mut w.v);
    let maps = &ev.violations[0].mappings;
    let got: Vec<(u64, Option<&str>)> = maps
        .iter()
        .map(|m| (m.vas[0].va, m.vas[0].region.as_deref()))
        .collect();
    assert_eq!(got.len(), 2);
    assert!(got.contains(&(0xffff_c900_0001_1000, Some("vmalloc"))));
    assert!(got.contains(&(0xffff_e900_0000_5000, Some("pkmap"))));
}

#[test]
fn mapping_reachable_only_from_a_pinned_process_l4() {
    let mut w = world(Policy::Enforce);
    // A user mapping of PAGE in the process address space only; kernel aliases gone.
    w.v.update_va_mapping(&mut w.s.mem, VMAP_VA, 0, 0).unwrap();
    w.v.update_va_mapping(&mut w.s.mem, PKMAP_VA, 0, 0).unwrap();
    let user_l1 = w.s.table_of(w.user_l4, 0x40_0000, 1);
    let req = pagetable_validator::abi::MmuUpdate {
        ptr: common::pte_ptr(user_l1, 3),
        val: PAGE.pte(PAGE_KERNEL | _PAGE_USER),
    };
    w.v.mmu_update(&mut w.s.mem, req).unwrap();
    w.v.drain_events();
    assert!(w.v.pin(&mut w.s.mem, 1, PAGE).is_err());
    let ev = one(&mut w.v);
    let m = &ev.violations[0].mappings[0];
    assert_eq!((m.l1, m.slot), (user_l1, 3));
    assert_eq!(m.vas[0].va, 0x40_3000);
    assert_eq!(m.vas[0].region.as_deref(), Some("user"));
    assert_eq!(m.vas[0].root, w.user_l4);
}

#[test]
fn writable_mapping_of_a_pinned_table_names_the_requested_slot() {
    let mut w = world(Policy::Enforce);
    w.v.update_va_mapping(&mut w.s.mem, VMAP_VA, 0, 0).unwrap();
    w.v.update_va_mapping(&mut w.s.mem, PKMAP_VA, PAGE.pte(PAGE_KERNEL_RO), 0)
        .unwrap();
    w.v.pin(&mut w.s.mem, 1, PAGE).unwrap();
    w.v.drain_events();
    let rc =
        w.v.update_va_mapping(&mut w.s.mem, PKMAP_VA, PAGE.pte(PAGE_KERNEL), 0);
    assert_eq!(rc.map_err(|e| e.errno()), Err(-16));
    let ev = one(&mut w.v);
    let vi = &ev.violations[0];
    assert_eq!(
        (vi.kind, vi.had, vi.frame_pinned),
        (
            ViolationKind::WritableMappingOfPagetable,
            PageType::L1,
            true
        )
    );
    assert!(vi.mappings[0].requested);
    assert_eq!(vi.mappings[0].vas[0].va, PKMAP_VA);
    assert!(ev.to_string().contains("[pkmap]"), "{ev}");
}

#[test]
fn unreachable_l1_is_said_so() {
    let mut w = world(Policy::Enforce);
    // A pinned L1 hanging nowhere maps a fresh page RW.
    w.s.mem.write_entry(Mfn(450), 0, mk_pte(451, PAGE_KERNEL));
    w.v.pin(&mut w.s.mem, 1, Mfn(450)).unwrap();
    assert!(w.v.pin(&mut w.s.mem, 1, Mfn(451)).is_err());
    let ev = w.v.drain_events().pop().unwrap();
    assert!(ev.violations[0].mappings[0].vas.is_empty());
    assert!(ev
        .to_string()
        .contains("(not reachable from the current base or a pinned L4)"));
}

#[test]
fn audit_tolerates_stray_mappings_then_behaves_as_if_clean() {
    let mut w = world(Policy::Audit);
    assert_eq!(w.v.pin(&mut w.s.mem, 1, PAGE), Ok(()));
    let ev = one(&mut w.v);
    assert_eq!(ev.rc, 0);
    let vi = &ev.violations[0];
    assert!(vi.tolerated);
    assert_eq!(vi.mappings.len(), 2);
    assert!(ev.to_string().contains("audit: tolerated"), "{ev}");
    let f = info(&w.v, PAGE);
    assert_eq!(
        (f.ty, f.pinned, f.type_count, f.tolerated_writable),
        (PageType::L1, true, 1, 2)
    );
    check(&w.v, &w.s.mem);
    // The offending mappings go away one by one.
    w.v.update_va_mapping(&mut w.s.mem, VMAP_VA, 0, 0).unwrap();
    assert_eq!(info(&w.v, PAGE).tolerated_writable, 1);
    check(&w.v, &w.s.mem);
    // Unpinned while one writable alias remains: the frame is writable again.
    w.v.unpin(&mut w.s.mem, PAGE).unwrap();
    let f = info(&w.v, PAGE);
    assert_eq!(
        (f.ty, f.type_count, f.tolerated_writable),
        (PageType::Writable, 1, 0)
    );
    check(&w.v, &w.s.mem);
    w.v.update_va_mapping(&mut w.s.mem, PKMAP_VA, 0, 0).unwrap();
    assert_eq!(w.v.page_type(PAGE), PageType::None);
    check(&w.v, &w.s.mem);
}

#[test]
fn audit_allows_writable_mapping_of_pinned_table_but_refuses_other_errors() {
    let mut w = world(Policy::Audit);
    w.v.update_va_mapping(&mut w.s.mem, VMAP_VA, 0, 0).unwrap();
    w.v.update_va_mapping(&mut w.s.mem, PKMAP_VA, 0, 0).unwrap();
    w.v.pin(&mut w.s.mem, 1, PAGE).unwrap();
    w.v.drain_events();
    assert_eq!(
        w.v.update_va_mapping(&mut w.s.mem, PKMAP_VA, PAGE.pte(PAGE_KERNEL), 0),
        Ok(())
    );
    let ev = one(&mut w.v);
    assert!(ev.violations[0].tolerated);
    assert_eq!(info(&w.v, PAGE).tolerated_writable, 1);
    check(&w.v, &w.s.mem);
    // Not RW-related: refused in audit too, with Xen's errno.
    let e = |r: Result<(), pagetable_validator::XenError>| r.map_err(|e| e.errno());
    assert_eq!(
        e(w.v.update_va_mapping(&mut w.s.mem, PKMAP_VA, PAGE.pte(PAGE_KERNEL | _PAGE_PCD), 0)),
        Err(-22)
    );
    assert_eq!(e(w.v.pin(&mut w.s.mem, 1, PAGE)), Err(-22)); // already pinned
    assert_eq!(e(w.v.pin(&mut w.s.mem, 2, PAGE)), Err(-22)); // L1 is not L2
    assert_eq!(e(w.v.unpin(&mut w.s.mem, Mfn(401))), Err(-22));
    assert_eq!(e(w.v.pin(&mut w.s.mem, 1, Mfn(NR + 1))), Err(-22));
    check(&w.v, &w.s.mem);
}

#[test]
fn audit_tolerates_a_stray_child_when_pinning_a_higher_level() {
    let mut w = world(Policy::Audit);
    // An L2 whose L1 child (PAGE) is still mapped writable twice.
    w.s.mem.write_entry(Mfn(460), 0, PAGE.pte(PAGE_TABLE));
    assert_eq!(w.v.pin(&mut w.s.mem, 2, Mfn(460)), Ok(()));
    let ev = one(&mut w.v);
    assert_eq!(ev.violations.len(), 1);
    assert_eq!(ev.violations[0].wanted, PageType::L1);
    assert_eq!(w.v.page_type(PAGE), PageType::L1);
    check(&w.v, &w.s.mem);
    // Same in enforce: refused, nothing changed.
    let mut e = world(Policy::Enforce);
    e.s.mem.write_entry(Mfn(460), 0, PAGE.pte(PAGE_TABLE));
    let before = e.v.frames_snapshot();
    assert_eq!(
        e.v.pin(&mut e.s.mem, 2, Mfn(460)).map_err(|x| x.errno()),
        Err(-22)
    );
    assert_eq!(e.v.frames_snapshot(), before);
}
