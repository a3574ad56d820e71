//! Scenario `kmap`: a persistent kmap released but not flushed (Linux: mm/highmem.c).
//!
//! A highmem page A is used as data through `kmap` and released with `kunmap`, which only
//! drops its `pkmap_count` to 1: the slot keeps mapping A read-write until the next
//! `flush_all_zero_pkmaps()`. A is freed and comes straight back from the allocator as a
//! page table (CONFIG_HIGHPTE), zeroed through `kmap_atomic`, and is pinned as an L1 with
//! `xen_pin`.
//!
//! * `lazy` (the bug: a kernel whose Xen pin path ignores kmaps): the pin meets the stale
//!   slot and Xen refuses (-22); our VMM's log names the pkmap slot. Then
//!   `kmap_flush_unused()`, and the pin goes through.
//! * `flush-unused` (the fix): `kmap_flush_unused()` before the pin (one batched clear + TLB
//!   flush), then the pin succeeds.
//! * `pin-hook` (Linux since 2007): no explicit flush; `xen_pin`'s kmap alias hook runs
//!   `kmap_flush_unused()` itself, and the pin succeeds.

use super::Transcript;
use crate::mm::highmem::{clear_highpage, kmap, kmap_flush_unused, kunmap, KmapError, KmapStats};
use crate::mm::pgalloc::{xen_pin, xen_unpin, PinStats};
use crate::setup::Kernel;
use crate::{println, t};

/// rc of a guest-side step: 0 if it held, 1 if not (as `selftest`).
pub(super) fn check(ok: bool) -> i64 {
    i64::from(!ok)
}

/// rc of a kmap operation: 0, Xen's rc, or -1 for a guest-side misuse.
pub(super) fn rc_of<T>(r: &Result<T, KmapError>) -> i64 {
    r.as_ref().map_or_else(KmapError::rc, |_| 0)
}

pub fn run(k: &mut Kernel, variant: Option<&str>) {
    let variant = variant.unwrap_or("lazy");
    let (flush_first, hook) = match variant {
        "lazy" => (false, false),
        "flush-unused" => (true, true),
        "pin-hook" => (false, true),
        other => panic!("kmap: unknown variant '{other}' (known: lazy, flush-unused, pin-hook)"),
    };
    let mut t = Transcript::new("kmap");
    let before = (k.highmem.stats, k.pgalloc.stats);
    let saved_hook = k.highmem.flush_on_pin;
    k.highmem.flush_on_pin = hook;

    // A as a data page behind a persistent kmap.
    let a = k.pages.alloc_highmem_page().expect("kmap: no highmem page");
    let r = kmap(k, a);
    t!(t, rc_of(&r), "kmap A (highmem data page) -> pkmap slot, RW");
    let va = r.unwrap_or_else(|e| panic!("kmap: {e}"));
    let words = va as *mut u64;
    // SAFETY: `va` maps all of A read-write until the kunmap below; nothing else uses A.
    let ok = unsafe {
        for i in 0..512 {
            words.add(i).write_volatile(0x5a5a_0000 + i as u64);
        }
        (0..512).all(|i| words.add(i).read_volatile() == 0x5a5a_0000 + i as u64)
    };
    t!(t, check(ok), "write and read back A through its kmap");
    let r = kunmap(k, a);
    t!(t, rc_of(&r), "kunmap A");
    let slot = k.highmem.pkmap_slot(a);
    t!(
        t,
        check(slot.is_some_and(|nr| k.highmem.pkmap_count(nr) == 1)),
        "A's pkmap slot: count 1, still maps A RW (lazy)"
    );
    k.pages.free_highmem_page(a);
    t!(t, check(!k.pages.page_allocated(a)), "free A");

    // A comes back as a page table.
    let p = k.pages.alloc_highmem_page().expect("kmap: no highmem page");
    t!(
        t,
        check(p == a),
        "alloc_highmem_page for a page table -> A again"
    );
    let r = clear_highpage(k, p);
    t!(
        t,
        rc_of(&r),
        "clear_highpage A (kmap_atomic, zero, kunmap_atomic)"
    );
    if flush_first {
        let r = kmap_flush_unused(k);
        t!(t, rc_of(&r), "kmap_flush_unused");
        t!(
            t,
            check(r == Ok(1) && k.highmem.pkmap_slot(a).is_none()),
            "one stale slot cleared, none maps A"
        );
    }
    let first = t!(t, xen_pin(k, 1, p), "xen_pin L1 A");
    let mut pinned = first == 0;
    if !pinned {
        let r = kmap_flush_unused(k);
        t!(t, rc_of(&r), "kmap_flush_unused");
        pinned = t!(t, xen_pin(k, 1, p), "xen_pin L1 A after the flush") == 0;
    }
    if pinned {
        t!(t, xen_unpin(k, p), "xen_unpin A");
    }
    t.finish();
    k.highmem.flush_on_pin = saved_hook;
    k.pages.free_highmem_page(p);

    let (expected, what) = match (flush_first, hook) {
        (true, _) => (
            first == 0,
            "kmap_flush_unused() before the pin: pin succeeds",
        ),
        (false, true) => (
            first == 0,
            "xen_pin's kmap hook flushes the stale slot: pin succeeds",
        ),
        (false, false) => (
            first == -22,
            "stale pkmap slot still maps the reallocated page RW: pin refused",
        ),
    };
    verdict("kmap", variant, expected, what, first);
    print_counts(k, &before);
}

/// `VERDICT <scenario> <variant> expected|UNEXPECTED: <what> (rc=<decisive rc>)`.
pub(super) fn verdict(scenario: &str, variant: &str, expected: bool, what: &str, rc: i64) {
    let tag = if expected { "expected" } else { "UNEXPECTED" };
    println!("VERDICT {scenario} {variant} {tag}: {what} (rc={rc})");
}

/// The scenario's own work counts: deltas of the kmap and pin statistics over the run.
pub(super) fn print_counts(k: &Kernel, before: &(KmapStats, PinStats)) {
    let (s, p) = (&k.highmem.stats, &k.pgalloc.stats);
    let (b, bp) = before;
    println!(
        "COUNTS kmaps={} kunmaps={} pkmap_maps={} pkmap_flushes={} slots_flushed={} flush_hypercalls={} kmap_atomics={} kunmap_atomics={} pins={} pin_refusals={}",
        s.kmaps - b.kmaps,
        s.kunmaps - b.kunmaps,
        s.pkmap_maps - b.pkmap_maps,
        s.pkmap_flushes - b.pkmap_flushes,
        s.slots_flushed - b.slots_flushed,
        s.flush_hypercalls - b.flush_hypercalls,
        s.kmap_atomics - b.kmap_atomics,
        s.kunmap_atomics - b.kunmap_atomics,
        p.pins - bp.pins,
        p.pin_failures - bp.pin_failures
    );
}
