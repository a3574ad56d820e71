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
//! * `wrap` (the lazy scheme working as designed): no flush anywhere, but before the pin the
//!   kernel kmaps and kunmaps other highmem pages until the slot cursor wraps; the wrap runs
//!   `flush_all_zero_pkmaps()` once for all 511 stale slots and the pin succeeds. Needs
//!   [`WRAP_PAGES`] highmem pages: boot with `highmem=512` or more.

use super::harness::{pick_variant, pin_outcome, print_verdict};
use super::Transcript;
use crate::mm::highmem::{
    clear_highpage, kmap, kmap_atomic, kmap_flush_unused, kunmap, kunmap_atomic, KmapError,
    KmapStats, LAST_PKMAP,
};
use crate::mm::pgalloc::{xen_pin, xen_unpin, PinStats};
use crate::mm::Pfn;
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
    // (flush_all_zero_pkmaps before pinning, the pin hook, wrap the pkmap ring).
    let (variant, (flush_first, hook, wrap)) = pick_variant(
        "kmap",
        variant,
        &[
            ("lazy", (false, false, false)),
            ("flush-unused", (true, true, false)),
            ("pin-hook", (false, true, false)),
            ("wrap", (false, false, true)),
        ],
    );
    let lazy = !(flush_first || hook || wrap);
    if wrap && k.pages.nr_free_highmem() < WRAP_PAGES {
        panic!(
            "kmap wrap: needs {WRAP_PAGES} free highmem pages, has {}: boot with highmem=512",
            k.pages.nr_free_highmem()
        );
    }
    let mut t = Transcript::new("kmap");
    let before = (k.highmem.stats, k.pgalloc.stats);
    let saved_hook = k.highmem.flush_on_pin;
    k.highmem.flush_on_pin = hook;

    // A lowmem page needs no slot: kmap and kmap_atomic return its direct-map address.
    let low = k.pages.alloc_page().expect("kmap: no lowmem page");
    let maps = k.highmem.stats.pkmap_maps + k.highmem.stats.kmap_atomics;
    let direct = k.directmap.page_address(low);
    let (r, ra) = (kmap(k, low), kmap_atomic(k, low));
    let same = direct.is_some() && r.ok() == direct && ra.ok() == direct;
    let ok = same && k.highmem.stats.pkmap_maps + k.highmem.stats.kmap_atomics == maps;
    t!(
        t,
        check(ok && kunmap(k, low).is_ok() && ra.is_ok_and(|va| kunmap_atomic(k, va).is_ok())),
        "kmap/kmap_atomic of a lowmem page: its direct-map address, no slot"
    );
    k.pages.put_page(low);

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
    if wrap {
        wrap_pkmap(&mut t, k, a);
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

    print_counts(k, &before);
    let result = pin_outcome(first == 0);
    let expected = pin_outcome(!lazy);
    print_verdict("kmap", variant, result, expected);
}

/// Highmem pages the `wrap` variant needs: A plus one page per other pkmap slot.
pub const WRAP_PAGES: u64 = LAST_PKMAP as u64;

/// Maps and unmaps distinct highmem pages (each stays allocated, so none is found already
/// mapped) until the pkmap cursor wraps, then frees them. A's stale slot must be gone.
fn wrap_pkmap(t: &mut Transcript, k: &mut Kernel, a: Pfn) {
    let mut others = [Pfn(0); LAST_PKMAP];
    let flushes = k.highmem.stats.pkmap_flushes;
    let (mut n, mut rc) = (0, 0);
    while k.highmem.stats.pkmap_flushes == flushes && n < others.len() && rc == 0 {
        let pfn = k.pages.alloc_highmem_page().expect("kmap wrap: highmem");
        others[n] = pfn;
        n += 1;
        rc = kmap(k, pfn).map_or_else(|e| e.rc(), |_| 0);
        if rc == 0 {
            rc = rc_of(&kunmap(k, pfn));
        }
    }
    t!(
        t,
        rc,
        "kmap+kunmap {n} other highmem pages (the slot cursor wraps)"
    );
    t!(
        t,
        check(k.highmem.stats.pkmap_flushes == flushes + 1 && k.highmem.pkmap_slot(a).is_none()),
        "the wrap ran flush_all_zero_pkmaps once; no slot maps A"
    );
    for &pfn in &others[..n] {
        k.pages.free_highmem_page(pfn);
    }
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
