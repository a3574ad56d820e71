//! Scenario `xfs-vmap`: XFS's 2007 lazy vmap purging with pages freed too early, and its fixes.
//!
//! Eight multi-page buffers (4 pages each) are mapped with vmap, written through the vmap
//! alias and checked through the direct map, then released. Then a process address space is
//! built (L4 + L3 + L2 + L1 from the allocator, which hands out the lowest free pages first,
//! i.e. the buffers' pages if they were freed) and pinned the Linux way.
//!
//! | variant | release | expected |
//! |---|---|---|
//! | `lazy` | `free_address` (queued, no purge: fewer than 65) + pages freed | pin refused (-22): a stale vmap alias maps a table RW |
//! | `eager` | `vunmap` (clear + flush now) + pages freed | pin ok |
//! | `vmap-pages` | `vunmap_pages(addr, release)`: pages freed only at the real unmap | pin ok |
//! | `unmap-aliases` | as `lazy`, but the pin path calls `vm_unmap_aliases()` first | pin ok |
//!
//! A refused pin is recorded and cleaned up (aliases writable again, tables freed); at the end
//! every lazy alias is purged and everything is freed.

use pagetable_validator::pte::{_PAGE_USER, PAGE_KERNEL};

use super::Transcript;
use crate::mm::pgalloc::{self, MmStruct};
use crate::mm::vmalloc::{self, VmapError};
use crate::mm::Pfn;
use crate::setup::Kernel;
use crate::{println, reboot, t};

const NBUF: usize = 8;
const BUF_PAGES: usize = 4;
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
pub fn pick_variant(scenario: &str, variant: Option<&str>, known: &[&'static str]) -> &'static str {
    let v = variant.unwrap_or(known[0]);
    match known.iter().find(|&&k| k == v) {
        Some(k) => k,
        None => {
            println!("{scenario}: unknown variant '{v}'; known:");
            for k in known {
                println!("  {k}");
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

pub fn run(k: &mut Kernel, variant: Option<&str>) {
    let variant = pick_variant(
        "xfs-vmap",
        variant,
        &["lazy", "eager", "vmap-pages", "unmap-aliases"],
    );
    let mut t = Transcript::new("xfs-vmap");
    k.pgalloc.unmap_aliases_on_pin = variant == "unmap-aliases";

    // xfs_buf_get_pages: one page at a time, like XFS.
    let mut bufs = [[Pfn(0); BUF_PAGES]; NBUF];
    let mut ok = true;
    for b in bufs.iter_mut() {
        for p in b.iter_mut() {
            match k.pages.alloc_page() {
                Some(pfn) => *p = pfn,
                None => ok = false,
            }
        }
    }
    if !ok {
        panic!("xfs-vmap: out of memory");
    }
    t!(t, 0, "alloc {NBUF} buffers x {BUF_PAGES} pages");

    // _xfs_buf_map_pages.
    let mut addrs = [0u64; NBUF];
    let mut rc = 0;
    for (a, b) in addrs.iter_mut().zip(&bufs) {
        let r = if variant == "vmap-pages" {
            vmalloc::vmap_pages(k, b)
        } else {
            vmalloc::vmap(k, b)
        };
        match r {
            Ok(addr) => *a = addr,
            Err(e) => rc = VmapError::rc(e),
        }
    }
    let how = if variant == "vmap-pages" {
        "vmap_pages"
    } else {
        "vmap"
    };
    if t!(t, rc, "{how} {NBUF} buffers") != 0 {
        panic!("xfs-vmap: vmap failed");
    }

    // Use the buffers: write through the vmap alias, read through the direct map.
    let mut same = true;
    for (i, (&a, b)) in addrs.iter().zip(&bufs).enumerate() {
        for (j, &p) in b.iter().enumerate() {
            let tag = 0x5846_5342_0000_0000 | ((i as u64) << 8) | j as u64;
            let va = a + (j as u64) * 4096;
            // SAFETY: `va` is page j of a live vmap area mapping `p` read-write; nothing else
            // references it.
            unsafe { (va as *mut u64).write_volatile(tag) };
            let dva = k.directmap.page_address(p).expect("lowmem buffer");
            // SAFETY: the direct map maps every lowmem page readable.
            same &= unsafe { (dva as *const u64).read_volatile() } == tag;
        }
    }
    t!(t, check(same), "write via vmap, read back via direct map");

    // xfs_buf_free.
    for (&a, b) in addrs.iter().zip(&bufs) {
        match variant {
            "eager" => {
                vmalloc::vunmap(k, a);
                b.iter().for_each(|&p| k.free_page(p));
            }
            "vmap-pages" => vmalloc::vunmap_pages(k, a, true),
            _ => {
                vmalloc::free_address(k, a);
                b.iter().for_each(|&p| k.free_page(p));
            }
        }
    }
    let release = match variant {
        "eager" => "vunmap (eager) + free pages",
        "vmap-pages" => "vunmap_pages(release) (lazy, pages held)",
        _ => "free_address (lazy) + free pages",
    };
    t!(t, 0, "release {NBUF} buffers: {release}");
    t!(
        t,
        0,
        "lazily unmapped areas still queued: {}",
        k.vmalloc.nr_lazy()
    );

    // A new process whose page tables come from the allocator's lowest free pages.
    let (mm, page, rc) = build_process(k);
    t!(t, rc, "pgd_alloc + map one user page (L4, L3, L2, L1)");
    let (Some(mm), Some(page)) = (mm, page) else {
        panic!("xfs-vmap: out of memory for the process");
    };
    let pin = pin_and_teardown(&mut t, k, mm, page);

    vmalloc::vm_unmap_aliases(k);
    t!(t, 0, "vm_unmap_aliases (final purge)");
    t!(
        t,
        check(k.vmalloc.nr_lazy() == 0),
        "no lazily unmapped area left"
    );
    t.finish();
    print_counts(k);
    let result = pin_outcome(pin == 0);
    let expected = pin_outcome(variant != "lazy");
    print_verdict("xfs-vmap", variant, result, expected);
}
