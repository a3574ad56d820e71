//! Scenario `highpte`: a page table that lives in highmem (Linux: CONFIG_HIGHPTE), reached
//! through `kmap_atomic` (Linux: `pte_offset_map`).
//!
//! L1 page P and data page D are highmem pages. P is zeroed and filled through a read-write
//! `kmap_atomic` while it is still an ordinary page (`P[0]` = D RW), unmapped, and pinned as an
//! L1. Then the kernel wants to look at P again:
//!
//! * `rw-kmap-atomic` (the bug): plain `kmap_atomic`, a read-write mapping of a pinned page
//!   table: Xen refuses it (-16 on Xen 4.17, `update_va_mapping` of a writable PTE to a frame
//!   typed L1).
//! * `ro-kmap-atomic` (Linux's Xen `kmap_atomic_pte`: `PAGE_KERNEL_RO` once pinned): the
//!   mapping is accepted; the entry is read through it, changed the PV way (`mmu_update`), and
//!   the change is seen through the read-only mapping.
//! * `pin-while-kmapped` (the kmap alias hook of `xen_pin`): P is held through a persistent
//!   kmap and a `kmap_atomic`, both read-write, when it is pinned; the hook remaps both
//!   read-only, the pin succeeds and both still read P; `xen_unpin` gives both their
//!   read-write mapping back, and a write through one is seen through the other.

use pagetable_validator::abi::mmu;
use pagetable_validator::pte::{
    mk_pte, pte_mfn, pte_present, pte_write, PAGE_KERNEL, PAGE_KERNEL_RO,
};

use super::harness::{pick_variant, pin_outcome, print_verdict};
use super::kmap::{check, print_counts, rc_of};
use super::Transcript;
use crate::mm::highmem::{
    clear_highpage, kmap, kmap_atomic, kmap_atomic_prot, kunmap, kunmap_atomic,
};
use crate::mm::pgalloc::{xen_pin, xen_unpin};
use crate::mm::pgtable::set_entry;
use crate::mm::{Mfn, Pfn};
use crate::setup::Kernel;
use crate::t;

/// Whether PTE `e` maps `mfn` present, with `_PAGE_RW` as `rw`. Only those bits: 64-bit PV
/// Xen adds `_PAGE_USER` and its `_PAGE_GUEST_KERNEL` bit to kernel entries it validates
/// (`adjust_guest_l1e`), so the entry read back is not the entry written.
fn maps(e: u64, mfn: Mfn, rw: bool) -> bool {
    pte_present(e) && pte_mfn(e) == mfn.0 && pte_write(e) == rw
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HighPte {
    RwKmapAtomic,
    RoKmapAtomic,
    PinWhileKmapped,
}

pub fn run(k: &mut Kernel, variant: Option<&str>) {
    let (variant, v) = pick_variant(
        "highpte",
        variant,
        &[
            ("rw-kmap-atomic", HighPte::RwKmapAtomic),
            ("ro-kmap-atomic", HighPte::RoKmapAtomic),
            ("pin-while-kmapped", HighPte::PinWhileKmapped),
        ],
    );
    let ro = v == HighPte::RoKmapAtomic;
    let mut t = Transcript::new("highpte");
    let before = (k.highmem.stats, k.pgalloc.stats);

    let alloc = |k: &mut Kernel| {
        k.pages
            .alloc_highmem_page()
            .expect("highpte: no highmem page")
    };
    let (p, d) = (alloc(k), alloc(k));
    let (pm, dm) = (k.pfn_to_mfn(p), k.pfn_to_mfn(d));
    let d_rw = mk_pte(dm.0, PAGE_KERNEL);
    let d_ro = mk_pte(dm.0, PAGE_KERNEL_RO);
    let r = clear_highpage(k, d);
    t!(t, rc_of(&r), "clear_highpage D");
    let r = clear_highpage(k, p);
    t!(t, rc_of(&r), "clear_highpage P");

    // Fill P while it is an ordinary page: a read-write atomic kmap is fine.
    let r = kmap_atomic(k, p);
    t!(t, rc_of(&r), "kmap_atomic P RW (not a page table yet)");
    let va = r.unwrap_or_else(|e| panic!("highpte: {e}"));
    // SAFETY: the atomic slot maps all of P read-write until kunmap_atomic.
    let ok = unsafe {
        (va as *mut u64).write_volatile(d_rw);
        (va as *const u64).read_volatile() == d_rw
    };
    t!(t, check(ok), "write P[0] = D RW through it");
    let r = kunmap_atomic(k, va);
    t!(t, rc_of(&r), "kunmap_atomic P");

    if v == HighPte::PinWhileKmapped {
        let decisive = pin_while_kmapped(&mut t, k, p, d);
        t.finish();
        k.pages.free_highmem_page(p);
        k.pages.free_highmem_page(d);
        print_counts(k, &before);
        let result = pin_outcome(decisive == 0);
        print_verdict("highpte", variant, result, "all-pins-ok");
        return;
    }

    // The Xen pin path (kmap alias hook included; nothing maps P any more).
    t!(t, xen_pin(k, 1, p), "xen_pin L1 P");

    // Look at the pinned table through kmap_atomic.
    let decisive;
    if ro {
        let r = kmap_atomic_prot(k, p, PAGE_KERNEL_RO);
        decisive = t!(t, rc_of(&r), "kmap_atomic P RO (pinned L1)");
        if let Ok(va) = r {
            let e = va as *const u64;
            // SAFETY: the atomic slot maps all of P read-only until kunmap_atomic.
            let e0 = unsafe { e.read_volatile() };
            t!(
                t,
                check(maps(e0, dm, true)),
                "read P[0] through it: maps D RW"
            );
            // SAFETY: P is a scenario page table mapping only scenario page D.
            let rc = unsafe { set_entry(pm, 1, d_ro, mmu::NORMAL_PT_UPDATE) };
            t!(t, rc, "mmu_update P[1] = D RO");
            // SAFETY: the atomic slot still maps all of P (read-only) until kunmap_atomic;
            // entry 1 of 512 is inside it.
            let e1 = unsafe { e.add(1).read_volatile() };
            t!(
                t,
                check(maps(e1, dm, false)),
                "read P[1] through the RO kmap: maps D RO"
            );
            let r = kunmap_atomic(k, va);
            t!(t, rc_of(&r), "kunmap_atomic P");
        }
    } else {
        let r = kmap_atomic(k, p);
        decisive = t!(t, rc_of(&r), "kmap_atomic P RW (pinned L1)");
        if let Ok(va) = r {
            // Xen let it through: do not write, just undo.
            let r = kunmap_atomic(k, va);
            t!(t, rc_of(&r), "kunmap_atomic P");
        }
    }
    t!(t, xen_unpin(k, p), "xen_unpin P");
    t.finish();
    k.pages.free_highmem_page(p);
    k.pages.free_highmem_page(d);

    print_counts(k, &before);
    // Xen 4.17 refuses a writable mapping of a pinned table with -16 (docs/testing.md, the
    // basic pin sequence).
    let result = match decisive {
        0 => "mapping-ok",
        -16 => "rw-mapping-refused",
        _ => "mapping-failed-otherwise",
    };
    let expected = if ro {
        "mapping-ok"
    } else {
        "rw-mapping-refused"
    };
    print_verdict("highpte", variant, result, expected);
}

/// The `pin-while-kmapped` part: pin and unpin P while a persistent kmap and an atomic kmap
/// of it are held. Returns the pin's rc.
fn pin_while_kmapped(t: &mut Transcript, k: &mut Kernel, p: Pfn, d: Pfn) -> i64 {
    let dm = k.pfn_to_mfn(d);
    let r = kmap(k, p);
    t!(t, rc_of(&r), "kmap P RW (persistent, held)");
    let vk = r.unwrap_or_else(|e| panic!("highpte: {e}"));
    let r = kmap_atomic(k, p);
    t!(t, rc_of(&r), "kmap_atomic P RW (held)");
    let va = r.unwrap_or_else(|e| panic!("highpte: {e}"));
    let pin = t!(
        t,
        xen_pin(k, 1, p),
        "xen_pin L1 P (the hook makes both kmaps RO)"
    );
    // SAFETY: both slots map all of P (read-only while pinned) until the kunmaps below.
    let (ek, ea) = unsafe {
        (
            (vk as *const u64).read_volatile(),
            (va as *const u64).read_volatile(),
        )
    };
    t!(
        t,
        check(maps(ek, dm, true) && maps(ea, dm, true)),
        "read P[0] through both: maps D RW"
    );
    if pin == 0 {
        t!(
            t,
            xen_unpin(k, p),
            "xen_unpin P (the hook gives both kmaps RW back)"
        );
    }
    let d_ro = mk_pte(dm.0, PAGE_KERNEL_RO);
    // SAFETY: P is an ordinary page again, mapped read-write at both slots; writing an entry
    // into a page that is no page table changes no mapping.
    let ok = unsafe {
        (vk as *mut u64).add(1).write_volatile(d_ro);
        (va as *const u64).add(1).read_volatile() == d_ro
    };
    t!(
        t,
        check(ok),
        "write P[1] through the kmap, read it through the kmap_atomic"
    );
    let r = kunmap_atomic(k, va);
    t!(t, rc_of(&r), "kunmap_atomic P");
    let r = kunmap(k, p);
    t!(t, rc_of(&r), "kunmap P");
    pin
}
