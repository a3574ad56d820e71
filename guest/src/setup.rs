//! Boot: from `start_info` to a running kernel (Linux: arch/x86/xen/enlighten_pv.c
//! `xen_start_kernel`, arch/x86/kernel/setup.c).

use pagetable_validator::abi::StartInfo;
use pagetable_validator::pte::{layout::KERNEL_BASE, PAGE_SHIFT};

use crate::cmdline::Cmdline;
use crate::mm::directmap::{BootTables, DirectMap};
use crate::mm::fixmap::Fixmap;
use crate::mm::highmem::{self, Highmem};
use crate::mm::memblock::{Memblock, PfnRange};
use crate::mm::p2m::{M2p, P2m};
use crate::mm::page_alloc::{PageAlloc, DEFAULT_HIGHMEM_PAGES};
use crate::mm::pgalloc::PgAlloc;
use crate::mm::vmalloc::Vmalloc;
use crate::mm::{boot_pfn, pgtable, Mfn, Pfn};
use crate::{hypercall, println, reboot, scenarios};

extern "C" {
    /// Start and end of the image (link.ld).
    static _text: u8;
    static _end: u8;
}

/// Where the domain builder put things, in pfns (all inside the bootstrap region).
#[derive(Clone, Copy, Debug)]
pub struct BootLayout {
    /// The kernel image, `_text.._end`.
    pub kernel: PfnRange,
    /// The bootstrap page-table frames (`pt_base`, `nr_pt_frames`).
    pub pt: PfnRange,
    /// The bootstrap region: pfns mapped 1:1 at `KERNEL_BASE + pfn * 4096`.
    pub bootstrap: PfnRange,
    /// All of the domain's pfns.
    pub nr_pages: u64,
}

/// The kernel's state: everything a scenario needs, passed by `&mut` (no global state).
pub struct Kernel {
    pub start_info: &'static StartInfo,
    pub layout: BootLayout,
    pub p2m: P2m,
    pub m2p: M2p,
    pub memblock: Memblock,
    pub pages: PageAlloc,
    pub fixmap: Fixmap,
    /// Persistent kmap window and kmap_atomic slots (`kmap`, `kmap_atomic`).
    pub highmem: Highmem,
    /// The direct map of ZONE_NORMAL (`page_address`, `set_memory_ro/rw`).
    pub directmap: DirectMap,
    /// Pin path: alias hooks, `vm_unmap_aliases`-before-pin switch, pin counts.
    pub pgalloc: PgAlloc,
    /// The vmalloc / vmap area.
    pub vmalloc: Vmalloc,
}

impl Kernel {
    pub fn pfn_to_mfn(&self, pfn: Pfn) -> Mfn {
        self.p2m.pfn_to_mfn(pfn)
    }

    /// One page with no mapping at all (ZONE_HIGHMEM: never direct-mapped); running out is a
    /// scenario bug. For lowmem pages use `self.pages.alloc_page()`.
    pub fn alloc_page(&mut self) -> Pfn {
        self.pages
            .alloc_highmem_page()
            .expect("alloc_page: out of highmem pages")
    }

    /// Drops the reference on a page from either zone (frees it at 0).
    pub fn free_page(&mut self, pfn: Pfn) {
        self.pages.put_page(pfn);
    }

    /// Zeroes a page (through a fixmap slot, unmapped again afterwards).
    pub fn clear_page(&self, pfn: Pfn) {
        if let Err(rc) = self.fixmap.clear_page(self.pfn_to_mfn(pfn)) {
            panic!("clear_page({:#x}): rc={rc}", pfn.0);
        }
    }
}

/// The Rust entry point, called by `_start` (head.rs) on the boot stack.
///
/// # Safety
/// `si` must be the `start_info` pointer the hypervisor passed in rsi.
pub unsafe extern "C" fn start_kernel(si: *const StartInfo) -> ! {
    // SAFETY: the hypervisor maps start_info for us for good (xen.h start-of-day contract).
    let si: &'static StartInfo = unsafe { &*si };
    if !si.magic_ok() {
        println!("start_kernel: bad start_info magic");
        reboot::machine_crash();
    }
    let cmdline = Cmdline::parse(si.cmd_line_bytes());
    if let Err(what) = check_start_info(si, &raw const _end as u64) {
        panic!("start_info breaks the PV start-of-day layout: {what}");
    }
    let highmem = cmdline
        .get("highmem")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_HIGHMEM_PAGES);
    let mut k = setup_arch(si, highmem);
    let ver = hypercall::xen_version();
    let mut extra = [0u8; 16];
    let extra = match hypercall::xen_extraversion(&mut extra) {
        0 => core::str::from_utf8(&extra[..extra.iter().position(|&b| b == 0).unwrap_or(16)])
            .unwrap_or(""),
        _ => "",
    };
    let l = &k.layout;
    let (major, minor) = if ver < 0 {
        (0, 0)
    } else {
        (ver >> 16, ver & 0xffff)
    };
    println!(
        "boot: hypervisor {}.{}{} nr_pages={} bootstrap=pfn {:#x}..{:#x} kernel={:#x}..{:#x} pt={:#x}+{} m2p={} memblock_free={} free_pages={}",
        major,
        minor,
        extra,
        l.nr_pages,
        l.bootstrap.start.0,
        l.bootstrap.end.0,
        l.kernel.start.0,
        l.kernel.end.0,
        l.pt.start.0,
        l.pt.len(),
        k.m2p.kind(),
        k.memblock.free(),
        k.pages.nr_free()
    );
    println!("boot: cmdline \"{}\"", cmdline.as_str());
    scenarios::run(&mut k, &cmdline);
    reboot::machine_power_off()
}

/// Checks the `start_info` fields the kernel trusts before it dereferences any of them, so a
/// broken domain builder gets a clear message instead of a fault. Order per xen.h: image,
/// P2M (`mfn_list`), `start_info`, page tables (`pt_base`), boot stack; all page-aligned
/// except `start_info` itself, all above the image.
fn check_start_info(si: &StartInfo, image_end: u64) -> Result<(), &'static str> {
    const PAGE: u64 = 1 << PAGE_SHIFT;
    let si_va = si as *const StartInfo as u64;
    let p2m_end = si
        .nr_pages
        .checked_mul(8)
        .and_then(|b| si.mfn_list.checked_add(b))
        .ok_or("nr_pages overflows the P2M")?;
    let checks = [
        (
            si.nr_pages > 0 && si.nr_pages < 1 << 40,
            "nr_pages out of range",
        ),
        (
            si.mfn_list >= image_end,
            "mfn_list is not above the kernel image",
        ),
        (
            si.mfn_list.is_multiple_of(PAGE),
            "mfn_list is not page-aligned",
        ),
        (p2m_end <= si_va, "the P2M overlaps start_info"),
        (
            si.pt_base.is_multiple_of(PAGE),
            "pt_base is not page-aligned",
        ),
        (si.pt_base > si_va, "pt_base is not above start_info"),
        (
            si.nr_pt_frames >= 4 && si.nr_pt_frames <= 512,
            "nr_pt_frames out of range",
        ),
    ];
    match checks.iter().find(|(ok, _)| !ok) {
        Some((_, what)) => Err(what),
        None => Ok(()),
    }
}

/// Discovers the boot layout and brings up P2M, memblock, the reverse map, the page allocator
/// and the fixmap. Panics (crashing the domain with a message) if the builder broke the ABI.
fn setup_arch(si: &'static StartInfo, highmem_pages: u64) -> Kernel {
    // SAFETY: the builder maps the P2M (nr_pages entries) for good in the bootstrap region.
    let p2m = unsafe { P2m::from_start_info(si) };
    let page_of = |va: u64| {
        assert!(
            va >= KERNEL_BASE,
            "start_info address {va:#x} below KERNEL_BASE"
        );
        boot_pfn(va)
    };
    let kernel = PfnRange {
        start: page_of(&raw const _text as u64),
        end: page_of((&raw const _end as u64) + (1 << PAGE_SHIFT) - 1),
    };
    let pt_start = page_of(si.pt_base);
    let pt = PfnRange::new(pt_start.0, pt_start.0 + si.nr_pt_frames);
    let stack_end = pt.end.next(1);
    let bootstrap_end = pgtable::probe_bootstrap_end(&p2m, si.pt_base, pt);
    assert!(
        stack_end <= bootstrap_end && bootstrap_end.0 <= si.nr_pages,
        "bootstrap region {:#x} does not cover the boot stack {:#x} or exceeds nr_pages",
        bootstrap_end.0,
        stack_end.0
    );
    let layout = BootLayout {
        kernel,
        pt,
        bootstrap: PfnRange {
            start: Pfn(0),
            end: bootstrap_end,
        },
        nr_pages: si.nr_pages,
    };
    let l4 = p2m.pfn_to_mfn(pt_start);

    // Free bootstrap pages: below the image, and from the boot stack to the region's end.
    let mut memblock = Memblock::new();
    memblock.add(PfnRange {
        start: Pfn(0),
        end: kernel.start,
    });
    memblock.add(PfnRange {
        start: stack_end,
        end: bootstrap_end,
    });
    let m2p = M2p::build(&p2m, &mut memblock).expect("memblock too small for the reverse map");
    // Cheap cross-check of the reverse map against the P2M on frames we know.
    for pfn in [Pfn(0), pt_start, Pfn(si.nr_pages - 1)] {
        assert_eq!(
            m2p.mfn_to_pfn(p2m.pfn_to_mfn(pfn)),
            Some(pfn),
            "reverse map is inconsistent"
        );
    }
    let pages = PageAlloc::new(
        PfnRange {
            start: bootstrap_end,
            end: Pfn(si.nr_pages),
        },
        highmem_pages,
        &mut memblock,
    )
    .expect("memblock too small for the page allocator");
    let fixmap = match Fixmap::init(&mut memblock, &p2m, l4) {
        Ok(f) => f,
        Err(e) => panic!("early_fixmap_init: {e}"),
    };
    let highmem = Highmem::init(&mut memblock, &p2m, &fixmap, pages.highmem_range())
        .unwrap_or_else(|e| panic!("permanent_kmaps_init: {e}"));
    let mut pgalloc = PgAlloc::default();
    pgalloc.hooks.register(highmem::kmap_alias_hook);
    let vmalloc =
        Vmalloc::init(&mut memblock, &p2m, l4).unwrap_or_else(|rc| panic!("vmalloc_init: rc={rc}"));
    // Last: the direct map mirrors the bootstrap alias's protection of every bootstrap pfn, so
    // every boot-time page table (fixmap, pkmap, ...) must be read-only there by now.
    let directmap = DirectMap::init(
        &mut memblock,
        &BootTables {
            p2m: &p2m,
            m2p: &m2p,
            l4,
            l4_va: si.pt_base,
            bootstrap: layout.bootstrap,
        },
        pages.highmem_range().start,
    )
    .unwrap_or_else(|e| panic!("direct map: {e}"));
    Kernel {
        start_info: si,
        layout,
        p2m,
        m2p,
        memblock,
        pages,
        fixmap,
        highmem,
        directmap,
        pgalloc,
        vmalloc,
    }
}
