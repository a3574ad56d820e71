//! Scenario `directmap-alias`: the lowmem direct-map alias of a page-table page.
//!
//! Every ZONE_NORMAL page is mapped read-write in the direct map. A page-table page must have
//! that alias made read-only before it is pinned (Linux: `make_lowmem_page_readonly` in the
//! Xen pin path):
//!
//! | variant | what is pinned | expected |
//! |---|---|---|
//! | `forget-ro` | an L1 and a whole process L4, pinned raw (no `set_memory_ro`) | both refused (-22) |
//! | `make-ro` | the same, through `xen_pin` / `xen_pgd_pin` | both ok; making the alias RW while pinned is refused (-16); the pinned mm grows (new tables RO before they are hooked in) |

use super::harness::{
    build_process, check, pick_variant, pin_outcome, print_counts, print_verdict,
};
use super::Transcript;
use crate::mm::pgalloc::{self, pgd_free, pte_alloc_one, pte_free, xen_pin, xen_unpin};
use crate::mm::pgtable::{pin_table, unpin_table};
use crate::setup::Kernel;
use crate::t;
use pagetable_validator::pte::{_PAGE_USER, PAGE_KERNEL};

/// A user address under another L4 slot than `USER_VA` (needs its own L3, L2, L1).
const FAR_USER_VA: u64 = 0x80_0000_0000;

pub fn run(k: &mut Kernel, variant: Option<&str>) {
    let (variant, make_ro) = pick_variant(
        "directmap-alias",
        variant,
        &[("forget-ro", false), ("make-ro", true)],
    );
    let mut t = Transcript::new("directmap-alias");
    let mut refused = 0;

    let l1 = pte_alloc_one(k).expect("directmap-alias: out of memory");
    t!(t, 0, "pte_alloc_one (lowmem, direct-mapped RW)");
    let mfn = k.pfn_to_mfn(l1);
    if make_ro {
        refused += (t!(t, xen_pin(k, 1, l1), "xen_pin L1 (set_memory_ro + pin)") != 0) as u32;
        t!(
            t,
            k.directmap.set_memory_rw(&k.p2m, l1),
            "set_memory_rw while pinned"
        );
        t!(t, xen_unpin(k, l1), "xen_unpin L1 (unpin + set_memory_rw)");
    } else {
        k.pgalloc.stats.pins += 1;
        let rc = t!(t, pin_table(1, mfn), "pin_l1 (direct-map alias still RW)");
        if rc != 0 {
            refused += 1;
            k.pgalloc.stats.pin_failures += 1;
        } else {
            t!(t, unpin_table(mfn), "unpin_l1");
        }
    }
    pte_free(k, l1);
    t!(t, 0, "pte_free");

    let (mm, page, rc) = build_process(k);
    t!(t, rc, "pgd_alloc + map one user page (L4, L3, L2, L1)");
    let (Some(mut mm), Some(page)) = (mm, page) else {
        panic!("directmap-alias: out of memory for the process");
    };
    if make_ro {
        let rc = t!(t, pgalloc::xen_pgd_pin(k, &mut mm), "xen_pgd_pin");
        refused += (rc != 0) as u32;
        if rc == 0 {
            // Growing a pinned address space: new tables are made RO before mmu_update
            // hooks them in (Linux: xen_alloc_ptpage).
            let page2 = k
                .pages
                .alloc_page()
                .expect("directmap-alias: out of memory");
            let rc = pgalloc::mm_map_page(k, &mut mm, FAR_USER_VA, page2, PAGE_KERNEL | _PAGE_USER);
            t!(t, rc, "mm_map_page into the pinned mm (new L3, L2, L1)");
            t!(
                t,
                pgalloc::xen_pgd_unpin(k, &mut mm),
                "xen_pgd_unpin ({} tables)",
                mm.nr_tables()
            );
            k.pages.put_page(page2);
        }
    } else {
        let pgd = k.pfn_to_mfn(mm.pgd());
        k.pgalloc.stats.pins += 1;
        let rc = t!(t, pin_table(4, pgd), "pin_l4 (direct-map aliases still RW)");
        if rc != 0 {
            refused += 1;
            k.pgalloc.stats.pin_failures += 1;
        } else {
            t!(t, unpin_table(pgd), "unpin_l4");
        }
    }
    pgd_free(k, mm);
    k.pages.put_page(page);
    t!(t, 0, "pgd_free + free user page");
    t!(t, check(k.pages.bad_pages() == 0), "no bad pages");
    t.finish();
    print_counts(k);
    let result = pin_outcome(refused == 0);
    let expected = pin_outcome(make_ro);
    print_verdict("directmap-alias", variant, result, expected);
}
