//! Scenario `compound-vmap`: a reference taken on the wrong page of a higher-order allocation.
//!
//! An order-2 block holds a buffer in its second half (pages 2 and 3), which is mapped with
//! `vmap_pages` — the refcounted fix, so the area takes a reference on each page it maps.
//! Whether that reference protects anything depends on the allocation:
//!
//! | variant | allocation | `get_page(tail)` lands on | owner's `__free_pages(head, 2)` | expected |
//! |---|---|---|---|---|
//! | `tail-ref` | plain block (no `__GFP_COMP`) | the tail's own count | frees all 4 pages while 2 are still vmapped RW | pin refused (-22), 2 bad pages at the real unmap |
//! | `head-ref` | compound (`__GFP_COMP`) | the head | block stays until the vmap lets go | pin ok |
//!
//! Then a process is built from the lowest free pages (the block's pages if it was freed
//! early) and pinned; at the end the vmap area is torn down (`vm_unmap_aliases`), which drops
//! its references — on already-free pages in the tail-ref case (counted as bad pages).

use super::harness::{
    build_process, check, pick_variant, pin_and_teardown, pin_outcome, print_counts, print_verdict,
};
use super::Transcript;
use crate::mm::vmalloc;
use crate::setup::Kernel;
use crate::t;

const ORDER: u32 = 2;

pub fn run(k: &mut Kernel, variant: Option<&str>) {
    let (variant, compound) = pick_variant(
        "compound-vmap",
        variant,
        &[("tail-ref", false), ("head-ref", true)],
    );
    let mut t = Transcript::new("compound-vmap");
    let head = if compound {
        k.pages.alloc_pages_compound(ORDER)
    } else {
        k.pages.alloc_pages(ORDER)
    }
    .expect("compound-vmap: out of memory");
    let what = if compound {
        "alloc_pages(__GFP_COMP, 2)"
    } else {
        "alloc_pages(2) (plain block)"
    };
    t!(t, 0, "{what}");

    let buf = [head.next(2), head.next(3)];
    let addr = match vmalloc::vmap_pages(k, &buf) {
        Ok(a) => a,
        Err(e) => panic!("compound-vmap: vmap_pages failed: {e:?}"),
    };
    t!(t, 0, "vmap_pages(pages 2..3 of the block)");
    let (h, t2) = (k.pages.page_count(head), k.pages.page_count(buf[0]));
    t!(t, 0, "page_count: head={h} page2={t2}");

    k.pages.free_pages(head, ORDER);
    let freed = !k.pages.page_allocated(buf[0]);
    t!(
        t,
        0,
        "owner: __free_pages(head, 2); block freed while vmapped: {}",
        if freed { "yes" } else { "no" }
    );

    let (mm, page, rc) = build_process(k);
    t!(t, rc, "pgd_alloc + map one user page (L4, L3, L2, L1)");
    let (Some(mm), Some(page)) = (mm, page) else {
        panic!("compound-vmap: out of memory for the process");
    };
    let pin = pin_and_teardown(&mut t, k, mm, page);

    vmalloc::vunmap_pages(k, addr, false);
    vmalloc::vm_unmap_aliases(k);
    t!(t, 0, "vunmap_pages(addr, release=false) + vm_unmap_aliases");
    let gone = !k.pages.page_allocated(head) && !k.pages.page_allocated(buf[1]);
    t!(t, check(gone), "block free at the end");
    t.finish();
    print_counts(k);
    let result = pin_outcome(pin == 0);
    let expected = pin_outcome(compound);
    print_verdict("compound-vmap", variant, result, expected);
}
