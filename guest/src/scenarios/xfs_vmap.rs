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

use super::harness::{
    build_process, check, pick_variant, pin_and_teardown, pin_outcome, print_counts, print_verdict,
};
use super::Transcript;
use crate::mm::vmalloc::{self, VmapError};
use crate::mm::Pfn;
use crate::setup::Kernel;
use crate::t;

const NBUF: usize = 8;
const BUF_PAGES: usize = 4;

#[derive(Clone, Copy, PartialEq, Eq)]
enum XfsVmap {
    Lazy,
    Eager,
    VmapPages,
    UnmapAliases,
}

pub fn run(k: &mut Kernel, variant: Option<&str>) {
    let (variant, v) = pick_variant(
        "xfs-vmap",
        variant,
        &[
            ("lazy", XfsVmap::Lazy),
            ("eager", XfsVmap::Eager),
            ("vmap-pages", XfsVmap::VmapPages),
            ("unmap-aliases", XfsVmap::UnmapAliases),
        ],
    );
    let mut t = Transcript::new("xfs-vmap");
    k.pgalloc.unmap_aliases_on_pin = v == XfsVmap::UnmapAliases;

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
        let r = if v == XfsVmap::VmapPages {
            vmalloc::vmap_pages(k, b)
        } else {
            vmalloc::vmap(k, b)
        };
        match r {
            Ok(addr) => *a = addr,
            Err(e) => rc = VmapError::rc(e),
        }
    }
    let how = if v == XfsVmap::VmapPages {
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
        match v {
            XfsVmap::Eager => {
                vmalloc::vunmap(k, a);
                b.iter().for_each(|&p| k.free_page(p));
            }
            XfsVmap::VmapPages => vmalloc::vunmap_pages(k, a, true),
            XfsVmap::Lazy | XfsVmap::UnmapAliases => {
                vmalloc::free_address(k, a);
                b.iter().for_each(|&p| k.free_page(p));
            }
        }
    }
    let release = match v {
        XfsVmap::Eager => "vunmap (eager) + free pages",
        XfsVmap::VmapPages => "vunmap_pages(release) (lazy, pages held)",
        XfsVmap::Lazy | XfsVmap::UnmapAliases => "free_address (lazy) + free pages",
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
    let expected = pin_outcome(v != XfsVmap::Lazy);
    print_verdict("xfs-vmap", variant, result, expected);
}
