//! Scenario `gdt-alias`: a GDT frame and its forgotten direct-map alias.
//!
//! Xen types a frame given to `set_gdt` as a descriptor page (`PGT_seg_desc_page`): like a
//! pagetable, it may not be mapped writable anywhere, so the kernel must make its lowmem alias
//! read-only first (Linux: `xen_load_gdt` → `make_lowmem_page_readonly`).
//!
//! | variant | what is given to `set_gdt` | expected |
//! |---|---|---|
//! | `forget-ro` | a lowmem page whose direct-map alias is still RW | refused (-22; VMM log: the direct-map VA) |
//! | `make-ro` | the same page after `set_memory_ro` | accepted; making the alias RW while it is a GDT is refused; `update_descriptor` goes through Xen's checks; after `set_gdt(0 entries)` the alias may be RW again |

use super::harness::{check, pick_variant, print_verdict};
use super::Transcript;
use crate::hypercall::{set_gdt, update_descriptor};
use crate::setup::Kernel;
use crate::t;

/// Flat descriptors as a 64-bit PV kernel writes them: code (L, DPL 3), data (DPL 3), and
/// data with DPL 0 (which Xen's check_descriptor has to judge).
const CODE64_DPL3: u64 = 0x00af_fa00_0000_ffff;
const DATA_DPL3: u64 = 0x00cf_f200_0000_ffff;
const DATA_DPL0: u64 = 0x00cf_9200_0000_ffff;
const ENTRIES: u64 = 16;

pub fn run(k: &mut Kernel, variant: Option<&str>) {
    let (variant, make_ro) = pick_variant(
        "gdt-alias",
        variant,
        &[("forget-ro", false), ("make-ro", true)],
    );
    let mut t = Transcript::new("gdt-alias");

    let page = k.pages.alloc_page().expect("gdt-alias: out of memory");
    t!(t, 0, "alloc a lowmem page for the GDT (direct-mapped RW)");
    let va = k
        .directmap
        .page_address(page)
        .expect("gdt-alias: a lowmem page has a direct-map address");
    // SAFETY: the page is ours and mapped RW at `va` in the direct map; nothing else uses it.
    unsafe {
        let d = va as *mut u64;
        for i in 0..512 {
            d.add(i).write_volatile(0);
        }
        d.add(1).write_volatile(CODE64_DPL3);
        d.add(2).write_volatile(DATA_DPL3);
    }
    t!(
        t,
        0,
        "fill {ENTRIES} descriptors (null, flat code, flat data)"
    );
    let mfn = k.pfn_to_mfn(page);
    if make_ro {
        t!(
            t,
            k.directmap.set_memory_ro(&k.p2m, page),
            "set_memory_ro (the direct-map alias)"
        );
    }
    // SAFETY: the frame holds only descriptors; no Rust reference writes it while it is a GDT.
    let rc = t!(
        t,
        unsafe { set_gdt(&[mfn.0], ENTRIES) },
        "set_gdt (1 frame, {ENTRIES} entries)"
    );
    if rc == 0 {
        t!(
            t,
            k.directmap.set_memory_rw(&k.p2m, page),
            "set_memory_rw while the frame is a GDT"
        );
        let maddr = |i: u64| (mfn.0 << 12) + i * 8;
        // SAFETY: the targets are entries of our GDT frame, which Xen writes for us.
        unsafe {
            t!(
                t,
                update_descriptor(maddr(3), DATA_DPL3),
                "update_descriptor entry 3 (flat data, DPL 3)"
            );
            t!(
                t,
                update_descriptor(maddr(4), DATA_DPL0),
                "update_descriptor entry 4 (flat data, DPL 0)"
            );
            t!(
                t,
                update_descriptor(maddr(3) + 4, DATA_DPL3),
                "update_descriptor at a misaligned address"
            );
        }
        // SAFETY: an empty GDT: no frame.
        t!(
            t,
            unsafe { set_gdt(&[], 0) },
            "set_gdt (0 entries): the frame is released"
        );
    }
    if make_ro {
        t!(
            t,
            k.directmap.set_memory_rw(&k.p2m, page),
            "set_memory_rw (no GDT any more)"
        );
    }
    k.pages.put_page(page);
    t!(
        t,
        check(k.pages.bad_pages() == 0),
        "free the page, no bad pages"
    );
    t.finish();
    let result = if rc == 0 { "gdt-ok" } else { "gdt-refused" };
    let expected = if make_ro { "gdt-ok" } else { "gdt-refused" };
    print_verdict("gdt-alias", variant, result, expected);
}
