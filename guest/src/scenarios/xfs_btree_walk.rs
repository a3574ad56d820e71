//! Scenario `xfs-btree-walk`: the performance side of the XFS vmap story.
//!
//! A directory btree of `blocks=<n>` (default [`DEFAULT_BLOCKS`]) multi-page blocks
//! ([`BLOCK_PAGES`] pages each, cached in memory for the whole run) is walked `passes=<n>`
//! times (default 1); every visit maps the block with vmap, reads its key through the
//! mapping, and unmaps it again — as `xfs_buf_get`/`xfs_buf_relse` did for multi-page
//! buffers. What the unmap costs is the point:
//!
//! | variant | unmap | cost |
//! |---|---|---|
//! | `eager` | `vunmap`: clear + TLB flush every time (the CONFIG_XEN workaround) | ~3 hypercalls and 1 flush per visit |
//! | `lazy` | `free_address`: queued, purged with one flush when > 64 are queued | ~1 hypercall per visit, 1 flush per 65 |
//! | `vmap-pages` | `vmap_pages` / `vunmap_pages(addr, false)`: lazy, plus a page reference held per mapping | as lazy |
//!
//! Nothing is freed while mapped here, so no pin is at stake; the `COUNTS` line (guest-side,
//! identical under any hypervisor) makes the eager/lazy ratio visible.

use super::harness::{check, pick_variant, print_counts, print_verdict};
use super::Transcript;
use crate::cmdline::Cmdline;
use crate::mm::vmalloc;
use crate::mm::Pfn;
use crate::setup::Kernel;
use crate::{println, t};

/// Default size. The seed workload is ~1700 blocks (`blocks=1700`); the default is scaled
/// down because on a KVM host that is itself emulated every TLB flush of our VMM (a CR3
/// reload) costs tens of milliseconds, and the eager variant flushes once per visit: a whole
/// eager boot takes ~3 s there with 256 blocks, ~16 s at the seed size (which the scenario
/// matrix runs). The counts scale linearly with `blocks` and `passes`.
pub const DEFAULT_BLOCKS: usize = 256;
/// Pages per block (8 KiB directory blocks).
pub const BLOCK_PAGES: usize = 2;
/// Most blocks we keep (pages come from ZONE_NORMAL).
const MAX_BLOCKS: usize = 4096;

fn key(i: usize) -> u64 {
    0x4254_5245_0000_0000 | i as u64
}

/// `name=<n>` from the command line, clamped to `1..=max`.
fn arg(cmdline: &Cmdline, name: &str, default: usize, max: usize) -> usize {
    cmdline
        .get(name)
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(1, max)
}

/// How a block's mapping goes away.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Release {
    Eager,
    Lazy,
    VmapPages,
}

pub fn run(k: &mut Kernel, variant: Option<&str>) {
    let (variant, release) = pick_variant(
        "xfs-btree-walk",
        variant,
        &[
            ("eager", Release::Eager),
            ("lazy", Release::Lazy),
            ("vmap-pages", Release::VmapPages),
        ],
    );
    let cmdline = Cmdline::parse(k.start_info.cmd_line_bytes());
    let nblocks = arg(&cmdline, "blocks", DEFAULT_BLOCKS, MAX_BLOCKS);
    let passes = arg(&cmdline, "passes", 1, 100);
    let mut t = Transcript::new("xfs-btree-walk");

    let free_before = k.pages.nr_free();
    // The block index (one Pfn per page of every block) lives on allocator pages, reached
    // through the direct map.
    let idx_order = (nblocks * BLOCK_PAGES * 8)
        .div_ceil(4096)
        .next_power_of_two()
        .trailing_zeros();
    let idx_pages = k
        .pages
        .alloc_pages(idx_order)
        .expect("xfs-btree-walk: out of memory for the block index");
    k.pages.split_page(idx_pages, idx_order);
    let idx_va = k.directmap.page_address(idx_pages).expect("lowmem");
    // SAFETY: freshly allocated lowmem pages, mapped RW in the direct map, used only here.
    let index: &mut [Pfn] =
        unsafe { core::slice::from_raw_parts_mut(idx_va as *mut Pfn, nblocks * BLOCK_PAGES) };
    for (i, chunk) in index.chunks_mut(BLOCK_PAGES).enumerate() {
        for p in chunk.iter_mut() {
            *p = k.pages.alloc_page().expect("xfs-btree-walk: out of memory");
        }
        let va = k.directmap.page_address(chunk[0]).expect("lowmem");
        // SAFETY: a fresh lowmem page, mapped RW in the direct map.
        unsafe { (va as *mut u64).write_volatile(key(i)) };
    }
    t!(
        t,
        0,
        "read {nblocks} blocks x {BLOCK_PAGES} pages into the buffer cache"
    );

    let mut all_ok = true;
    for pass in 1..=passes {
        let mut bad = 0u64;
        let mut rc = 0;
        for (i, chunk) in index.chunks(BLOCK_PAGES).enumerate() {
            let r = if release == Release::VmapPages {
                vmalloc::vmap_pages(k, chunk)
            } else {
                vmalloc::vmap(k, chunk)
            };
            let addr = match r {
                Ok(a) => a,
                Err(e) => {
                    rc = e.rc();
                    break;
                }
            };
            // SAFETY: page 0 of a live vmap area, mapped readable.
            if unsafe { (addr as *const u64).read_volatile() } != key(i) {
                bad += 1;
            }
            match release {
                Release::Eager => vmalloc::vunmap(k, addr),
                Release::Lazy => vmalloc::free_address(k, addr),
                Release::VmapPages => vmalloc::vunmap_pages(k, addr, false),
            }
        }
        if rc == 0 && bad != 0 {
            rc = -1;
        }
        all_ok &= rc == 0;
        t!(
            t,
            rc,
            "walk {pass}: map, read key, unmap every block (bad keys: {bad})"
        );
    }
    vmalloc::vm_unmap_aliases(k);
    t!(t, 0, "vm_unmap_aliases");

    let held = index.iter().all(|&p| k.pages.page_count(p) == 1);
    t!(
        t,
        check(held),
        "every page back to one reference (the cache's)"
    );
    for &p in index.iter() {
        k.pages.put_page(p);
    }
    // split_page made the index block independent pages: each goes back on its own.
    for i in 0..1u64 << idx_order {
        k.pages.put_page(idx_pages.next(i));
    }
    t!(
        t,
        check(k.pages.nr_free() == free_before),
        "free the buffer cache"
    );
    t.finish();
    print_counts(k);
    let s = k.vmalloc.stats;
    let visits = (nblocks * passes) as u64;
    println!(
        "WORK visits={visits} vmap_hypercalls_per_1000_visits={} flushes_per_1000_visits={}",
        s.hypercalls * 1000 / visits,
        s.flush_hypercalls * 1000 / visits
    );
    let result = if all_ok && k.pages.bad_pages() == 0 {
        "all-reads-ok"
    } else {
        "reads-failed"
    };
    print_verdict("xfs-btree-walk", variant, result, "all-reads-ok");
}
