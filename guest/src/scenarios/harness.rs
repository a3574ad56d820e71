//! The harness every scenario shares: variant selection, verdict and count lines, guest-side
//! checks, and the "process" (an address space with one user page) the mm scenarios pin.

use pagetable_validator::pte::{_PAGE_USER, PAGE_KERNEL};

use super::Transcript;
use crate::mm::pgalloc::{self, MmStruct};
use crate::mm::Pfn;
use crate::setup::Kernel;
use crate::{println, reboot, t};

/// Where the process maps its one user page.
pub const USER_VA: u64 = 0x40_0000;

/// Prints the scenario's work counts (guest-side, identical under any hypervisor).
pub fn print_counts(k: &Kernel) {
    let v = k.vmalloc.stats;
    let p = k.pgalloc.stats;
    println!(
        "COUNTS pages_mapped={} pages_unmapped={} vmaps={} vunmaps={} purges={} flush_hypercalls={} vmap_hypercalls={} pins={} pin_failures={} unpins={} pt_pages={} bad_pages={}",
        v.pages_mapped,
        v.pages_unmapped,
        v.vmaps,
        v.vunmaps,
        v.purges,
        v.flush_hypercalls,
        v.hypercalls,
        p.pins,
        p.pin_failures,
        p.unpins,
        p.pt_allocs,
        k.pages.bad_pages()
    );
}

/// Prints `VERDICT <scenario> variant=<v> result=<r> expected=<e> PASS|FAIL`.
pub fn print_verdict(scenario: &str, variant: &str, result: &str, expected: &str) {
    let ok = if result == expected { "PASS" } else { "FAIL" };
    println!("VERDICT {scenario} variant={variant} result={result} expected={expected} {ok}");
}

/// The verdict word for a run in which every pin succeeded (or one was refused).
pub fn pin_outcome(all_pins_ok: bool) -> &'static str {
    if all_pins_ok {
        "all-pins-ok"
    } else {
        "pin-refused"
    }
}

/// The variant named on the command line, or a crash listing the known ones.
pub fn pick_variant<V: Copy>(
    scenario: &str,
    variant: Option<&str>,
    known: &[(&'static str, V)],
) -> (&'static str, V) {
    let v = variant.unwrap_or(known[0].0);
    match known.iter().find(|&&(name, _)| name == v) {
        Some(&k) => k,
        None => {
            println!("{scenario}: unknown variant '{v}'; known:");
            for (name, _) in known {
                println!("  {name}");
            }
            reboot::machine_crash()
        }
    }
}

/// An rc for "a guest-side check held" (0) or not (-1).
pub fn check(ok: bool) -> i64 {
    if ok {
        0
    } else {
        -1
    }
}

/// Builds a process: `pgd_alloc`, one user page mapped RW (allocating L3, L2, L1).
/// Returns the mm, the user page and the rc.
pub fn build_process(k: &mut Kernel) -> (Option<MmStruct>, Option<Pfn>, i64) {
    let Some(mut mm) = pgalloc::pgd_alloc(k) else {
        return (None, None, -12);
    };
    let Some(page) = k.pages.alloc_page() else {
        return (Some(mm), None, -12);
    };
    let rc = pgalloc::mm_map_page(k, &mut mm, USER_VA, page, PAGE_KERNEL | _PAGE_USER);
    (Some(mm), Some(page), rc)
}

/// Pins `mm`; if that worked unpins it again. Then frees the tables and the user page.
/// Transcript lines: the pin, then the unpin (only if the pin succeeded), then the free.
/// Returns the pin's rc.
pub fn pin_and_teardown(t: &mut Transcript, k: &mut Kernel, mm: MmStruct, page: Pfn) -> i64 {
    let mut mm = mm;
    let n = mm.nr_tables();
    let rc = t!(
        t,
        pgalloc::xen_pgd_pin(k, &mut mm),
        "xen_pgd_pin ({n} tables)"
    );
    if rc == 0 {
        t!(t, pgalloc::xen_pgd_unpin(k, &mut mm), "xen_pgd_unpin");
    }
    pgalloc::pgd_free(k, mm);
    k.pages.put_page(page);
    t!(t, 0, "pgd_free + free user page");
    rc
}
