//! Scenario `demo` (the VMM's default for its embedded guest): the XFS 2007 bug and its fix in
//! one boot.
//!
//! Part 1 runs `xfs-vmap variant=lazy`: buffers are vmapped, released with XFS's lazy
//! `free_address` (the vmap alias stays mapped RW until a purge) while their pages go back to
//! the allocator at once; a new process's page tables reuse those pages, so the pin is refused
//! (-22) and the hypervisor's log names the stale vmap alias. Part 2 runs
//! `xfs-vmap variant=vmap-pages`: the vmap area holds a reference on every page until the real
//! unmap, so the tables get other pages and every pin succeeds.
//!
//! The two parts print their own transcripts, COUNTS and VERDICT lines exactly as
//! `scenario=xfs-vmap` does (counts are reset between the parts), then one `DEMO` line.
//! Narration lines start with `demo:` and are not part of any transcript.

use super::{harness, xfs_vmap};
use crate::println;
use crate::setup::Kernel;

pub fn run(k: &mut Kernel, _variant: Option<&str>) {
    println!("demo: == part 1/2: XFS (2007) lazy vmap purge, pages freed at once ==");
    println!("demo: 8 buffers x 4 pages are vmapped; on release XFS only queues the vmap");
    println!("demo: address (free_address) but frees the pages. A new process's page tables");
    println!("demo: reuse those pages while the stale vmap alias still maps them writable.");
    println!("demo: Xen refuses the pin with -22; the VMM log says which mapping is to blame.");
    let lazy = run_part(k, "lazy");
    println!("demo: == part 2/2: the fix, vmap_pages()/vunmap_pages(addr, release) ==");
    println!("demo: the vmap area takes a reference on each page and drops it only at the real");
    println!("demo: (still lazy) unmap, so no page can become a page table while mapped RW.");
    let fixed = run_part(k, "vmap-pages");
    let ok = !lazy && fixed;
    println!(
        "DEMO lazy={} vmap-pages={} {}",
        harness::pin_outcome(lazy),
        harness::pin_outcome(fixed),
        if ok {
            "PASS (bug caught, fix passes)"
        } else {
            "FAIL"
        }
    );
}

/// Runs one `xfs-vmap` variant with fresh work counters; returns whether every pin succeeded.
fn run_part(k: &mut Kernel, variant: &'static str) -> bool {
    k.vmalloc.stats = Default::default();
    k.pgalloc.stats = Default::default();
    xfs_vmap::run(k, Some(variant));
    k.pgalloc.unmap_aliases_on_pin = false;
    k.pgalloc.stats.pin_failures == 0
}
