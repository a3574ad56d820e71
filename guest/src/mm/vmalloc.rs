//! The vmalloc / vmap area at `VMALLOC_BASE` (Linux: mm/vmalloc.c, and XFS's 2007
//! fs/xfs/linux-2.6/xfs_buf.c lazy unmapping).
//!
//! `vmap` maps an array of pages read-write at a fresh virtual range ("area"). Tearing the
//! mapping down costs PTE clears plus a TLB flush, so XFS (2007) did it lazily:
//! [`free_address`] only queues the area and [`purge_addresses`] clears every queued area with
//! one flush once more than [`LAZY_MAX`] are queued — while the *pages* were freed at once.
//! A freed page can then be reallocated as a page table while a stale alias still maps it
//! read-write: Xen refuses to pin it (-22). The fixes modelled here:
//! * eager [`vunmap`] (the `CONFIG_XEN` workaround): clear + flush on every unmap;
//! * [`vmap_pages`] / [`vunmap_pages`]: the area holds a reference on every page and drops it
//!   only when the mapping is really torn down, so no page is freed while still mapped;
//! * [`vm_unmap_aliases`]: purge everything now — Xen's pin path calls it (see
//!   `pgalloc::PgAlloc::unmap_aliases_on_pin`).
//!
//! Areas are fixed slots of [`VMAP_STRIDE`] pages (at most [`VMAP_MAX_PAGES`] mapped, the rest
//! a guard gap), lowest free slot first, so allocation is deterministic. The area's tables
//! (one L3, one L2, [`NR_VMAP_L1`] L1s) are built at boot like the fixmap's and stay hooked
//! into the kernel half of every address space.

use pagetable_validator::abi::MulticallEntry;
use pagetable_validator::abi::{domid::DOMID_SELF, mmu, mmuext, uvmf, MmuUpdate, MmuextOp};
use pagetable_validator::pte::{self, layout, ENTRIES, PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_SIZE};

use super::memblock::Memblock;
use super::p2m::P2m;
use super::pgtable::mmu_req;
use super::{boot_va, Mfn, Pfn};
use crate::hypercall;
use crate::setup::Kernel;

/// XFS's threshold: purge when more than this many areas are queued.
pub const LAZY_MAX: usize = 64;
/// Most pages one area maps.
pub const VMAP_MAX_PAGES: usize = 16;
/// Virtual pages per area slot (mapped pages + guard gap).
pub const VMAP_STRIDE: usize = 32;
/// Number of area slots.
pub const NR_VMAP_AREAS: usize = 128;
/// L1 tables covering the slots.
pub const NR_VMAP_L1: usize = NR_VMAP_AREAS * VMAP_STRIDE / ENTRIES;

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum AreaState {
    Free,
    Mapped,
    /// Unmapped by the caller, still mapped in the page tables (queued for purge).
    Lazy,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct VmArea {
    state: AreaState,
    nr: u8,
    /// References per page to drop at the real teardown (0: plain vmap; 1: vmap_pages; 2:
    /// vmap_pages + vunmap_pages(release) handing over the caller's reference too).
    puts: u8,
    pages: [Pfn; VMAP_MAX_PAGES],
}

impl Default for VmArea {
    fn default() -> Self {
        VmArea {
            state: AreaState::Free,
            nr: 0,
            puts: 0,
            pages: [Pfn(0); VMAP_MAX_PAGES],
        }
    }
}

/// Work counts, for the scenarios' `COUNTS` lines (guest-side, hypervisor-independent).
#[derive(Clone, Copy, Debug, Default)]
pub struct VmapStats {
    pub vmaps: u64,
    pub vunmaps: u64,
    pub pages_mapped: u64,
    /// PTEs actually cleared (eager unmaps and purges).
    pub pages_unmapped: u64,
    /// `purge_addresses` runs that cleared at least one area.
    pub purges: u64,
    /// TLB-flush hypercalls issued by unmapping.
    pub flush_hypercalls: u64,
    /// Every hypercall the vmap layer issued (maps, clears, flushes).
    pub hypercalls: u64,
}

/// The vmalloc area's state (a field of [`Kernel`]).
pub struct Vmalloc {
    l1: [Mfn; NR_VMAP_L1],
    areas: &'static mut [VmArea],
    lazy: usize,
    pub stats: VmapStats,
}

/// Why a vmap failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmapError {
    /// Too many pages for one area, or no pages.
    BadSize,
    /// Every area slot is mapped.
    NoSpace,
    /// The hypervisor refused the PTE writes.
    Hypercall(i64),
}

impl VmapError {
    /// An rc for the transcript: Xen's, or -12 / -22 for guest-side failures.
    pub fn rc(self) -> i64 {
        match self {
            VmapError::BadSize => -22,
            VmapError::NoSpace => -12,
            VmapError::Hypercall(rc) => rc,
        }
    }
}

/// Virtual address of area slot `i`.
pub const fn area_addr(i: usize) -> u64 {
    layout::VMALLOC_BASE + (i * VMAP_STRIDE) as u64 * PAGE_SIZE
}

fn area_index(addr: u64) -> Option<usize> {
    let off = addr.checked_sub(layout::VMALLOC_BASE)? / PAGE_SIZE;
    let i = off as usize / VMAP_STRIDE;
    ((off as usize).is_multiple_of(VMAP_STRIDE) && i < NR_VMAP_AREAS).then_some(i)
}

impl Vmalloc {
    /// `vmalloc_init`: builds the area's L3, L2 and L1s from memblock and hooks them into
    /// the live L4 (`l4`). Call before the direct map is built (it mirrors the read-only
    /// bootstrap aliases of these tables). Returns the failing step's rc.
    pub fn init(mb: &mut Memblock, p2m: &P2m, l4: Mfn) -> Result<Vmalloc, i64> {
        let n = 2 + NR_VMAP_L1 as u64;
        let start = mb.alloc(n).ok_or(-12i64)?;
        let (l3, l2) = (start, start.next(1));
        let l1 = core::array::from_fn(|i| p2m.pfn_to_mfn(start.next(2 + i as u64)));
        let base = layout::VMALLOC_BASE;
        // SAFETY: fresh zeroed memblock pages, mapped RW at boot_va, not page tables yet.
        unsafe {
            let w = |t: Pfn, i: usize, v: u64| (boot_va(t) as *mut u64).add(i).write_volatile(v);
            w(
                l3,
                pte::table_index(base, 3),
                pte::mk_pte(p2m.pfn_to_mfn(l2).0, pte::PAGE_TABLE),
            );
            for (i, m) in l1.iter().enumerate() {
                w(
                    l2,
                    pte::table_index(base, 2) + i,
                    pte::mk_pte(m.0, pte::PAGE_TABLE),
                );
            }
        }
        let mut calls = [MulticallEntry::default(); 2 + NR_VMAP_L1];
        for (i, c) in calls.iter_mut().enumerate() {
            let t = start.next(i as u64);
            let ro = pte::mk_pte(p2m.pfn_to_mfn(t).0, PAGE_KERNEL_RO);
            *c = hypercall::mc_update_va_mapping(boot_va(t), ro, uvmf::INVLPG);
        }
        // SAFETY: the pages are ours and only accessed through raw pointers above.
        let rc = unsafe { hypercall::multicall(&mut calls) };
        if let Some(rc) = core::iter::once(rc)
            .chain(calls.iter().map(|c| c.result))
            .find(|&r| r != 0)
        {
            return Err(rc);
        }
        let hook = [mmu_req(
            l4,
            pte::table_index(base, 4),
            pte::mk_pte(p2m.pfn_to_mfn(l3).0, pte::PAGE_TABLE),
            mmu::NORMAL_PT_UPDATE,
        )];
        // SAFETY: the L4 slot of the vmalloc area was empty; the chain maps nothing yet.
        let rc = unsafe { hypercall::mmu_update(&hook, None, DOMID_SELF) };
        if rc != 0 {
            return Err(rc);
        }
        // SAFETY: an all-default VmArea is bit-for-bit zero apart from `state`, whose Free
        // variant is 0 (first variant of a fieldless enum), so zeroed memory is valid.
        let areas = unsafe { mb.alloc_array::<VmArea>(NR_VMAP_AREAS).ok_or(-12i64)? };
        Ok(Vmalloc {
            l1,
            areas,
            lazy: 0,
            stats: VmapStats::default(),
        })
    }

    /// Areas queued for lazy purge.
    pub fn nr_lazy(&self) -> usize {
        self.lazy
    }

    /// The mmu_update request writing `val` into the PTE of page `j` of area `i`.
    fn pte_req(&self, i: usize, j: usize, val: u64) -> MmuUpdate {
        let page = i * VMAP_STRIDE + j;
        mmu_req(
            self.l1[page / ENTRIES],
            page % ENTRIES,
            val,
            mmu::NORMAL_PT_UPDATE,
        )
    }
}

/// `vmap`: maps `pages` read-write at a new area. Purges the lazy queue if every slot is
/// taken. Returns the area's address.
pub fn vmap(k: &mut Kernel, pages: &[Pfn]) -> Result<u64, VmapError> {
    if pages.is_empty() || pages.len() > VMAP_MAX_PAGES {
        return Err(VmapError::BadSize);
    }
    let find = |v: &Vmalloc| v.areas.iter().position(|a| a.state == AreaState::Free);
    let i = match find(&k.vmalloc) {
        Some(i) => i,
        None if k.vmalloc.lazy > 0 => {
            purge_addresses(k);
            find(&k.vmalloc).ok_or(VmapError::NoSpace)?
        }
        None => return Err(VmapError::NoSpace),
    };
    let mut reqs = [MmuUpdate { ptr: 0, val: 0 }; VMAP_MAX_PAGES];
    for (j, (r, &p)) in reqs.iter_mut().zip(pages).enumerate() {
        *r = k
            .vmalloc
            .pte_req(i, j, pte::mk_pte(k.p2m.pfn_to_mfn(p).0, PAGE_KERNEL));
    }
    // SAFETY: the area's PTEs were clear (slot free, purged/flushed); only the new range maps.
    let rc = unsafe { hypercall::mmu_update(&reqs[..pages.len()], None, DOMID_SELF) };
    let v = &mut k.vmalloc;
    v.stats.hypercalls += 1;
    if rc != 0 {
        return Err(VmapError::Hypercall(rc));
    }
    let a = &mut v.areas[i];
    a.state = AreaState::Mapped;
    a.nr = pages.len() as u8;
    a.puts = 0;
    a.pages[..pages.len()].copy_from_slice(pages);
    v.stats.vmaps += 1;
    v.stats.pages_mapped += pages.len() as u64;
    Ok(area_addr(i))
}

/// `vmap_pages`: [`vmap`] that takes a reference on every page, held until the mapping is
/// really torn down (the refcounted fix).
pub fn vmap_pages(k: &mut Kernel, pages: &[Pfn]) -> Result<u64, VmapError> {
    let addr = vmap(k, pages)?;
    for &p in pages {
        k.pages.get_page(p);
    }
    k.vmalloc.areas[area_index(addr).expect("fresh area")].puts = 1;
    Ok(addr)
}

fn mapped_area(k: &Kernel, addr: u64) -> usize {
    match area_index(addr) {
        Some(i) if k.vmalloc.areas[i].state == AreaState::Mapped => i,
        _ => panic!("vunmap: {addr:#x} is not a mapped vmap area"),
    }
}

/// `vunmap_pages(addr, release)`: unmaps lazily (XFS's queue); the area's page references
/// are dropped only at the real teardown. With `release` the caller's own reference on each
/// page is handed over too (unmap-and-free, the XFS buffer-free case); without, the caller
/// keeps its pages.
pub fn vunmap_pages(k: &mut Kernel, addr: u64, release: bool) {
    let i = mapped_area(k, addr);
    let a = &mut k.vmalloc.areas[i];
    assert!(
        a.puts == 1,
        "vunmap_pages: area was not mapped by vmap_pages"
    );
    a.puts += release as u8;
    free_address(k, addr);
}

/// XFS's `free_address`: queues the area for a lazy unmap; purges once more than
/// [`LAZY_MAX`] are queued. The PTEs stay until then.
pub fn free_address(k: &mut Kernel, addr: u64) {
    let i = mapped_area(k, addr);
    let v = &mut k.vmalloc;
    v.areas[i].state = AreaState::Lazy;
    v.stats.vunmaps += 1;
    v.lazy += 1;
    if v.lazy > LAZY_MAX {
        purge_addresses(k);
    }
}

/// Eager `vunmap` (the `CONFIG_XEN` workaround): clears the PTEs and flushes the TLB now.
pub fn vunmap(k: &mut Kernel, addr: u64) {
    let i = mapped_area(k, addr);
    k.vmalloc.areas[i].state = AreaState::Lazy;
    k.vmalloc.lazy += 1;
    k.vmalloc.stats.vunmaps += 1;
    teardown(k, |j| j == i);
}

/// XFS's `purge_addresses`: clears every queued area's PTEs, then one TLB flush; then drops
/// the page references the areas held.
pub fn purge_addresses(k: &mut Kernel) {
    if k.vmalloc.lazy > 0 {
        k.vmalloc.stats.purges += 1;
        teardown(k, |_| true);
    }
}

/// `vm_unmap_aliases`: tears down every lazily unmapped area now.
pub fn vm_unmap_aliases(k: &mut Kernel) {
    purge_addresses(k)
}

/// Clears the PTEs of every lazy area `pick` selects (batched `mmu_update`s of up to 512
/// entries), flushes the TLB once, frees the slots and drops the held page references.
fn teardown(k: &mut Kernel, pick: impl Fn(usize) -> bool) {
    let mut reqs = [MmuUpdate { ptr: 0, val: 0 }; ENTRIES];
    let mut n = 0;
    let v = &mut k.vmalloc;
    for i in 0..NR_VMAP_AREAS {
        // Check before copying: a VmArea is ~270 bytes and guest code runs emulated here
        // (copying all 128 areas twice per eager vunmap cost ~15 ms).
        if v.areas[i].state != AreaState::Lazy || !pick(i) {
            continue;
        }
        let a = v.areas[i];
        for j in 0..a.nr as usize {
            if n == ENTRIES {
                flush_reqs(v, &reqs[..n]);
                n = 0;
            }
            reqs[n] = v.pte_req(i, j, 0);
            n += 1;
        }
    }
    if n > 0 {
        flush_reqs(v, &reqs[..n]);
    }
    let flush: [MmuextOp; 1] = [MmuextOp {
        cmd: mmuext::TLB_FLUSH_LOCAL,
        _pad: 0,
        arg1: 0,
        arg2: 0,
    }];
    // SAFETY: a TLB flush changes no mapping.
    let rc = unsafe { hypercall::mmuext_op(&flush, None, DOMID_SELF) };
    assert_eq!(rc, 0, "vmap teardown: TLB flush refused");
    v.stats.hypercalls += 1;
    v.stats.flush_hypercalls += 1;
    for i in 0..NR_VMAP_AREAS {
        if k.vmalloc.areas[i].state != AreaState::Lazy || !pick(i) {
            continue;
        }
        let a = k.vmalloc.areas[i];
        k.vmalloc.areas[i] = VmArea::default();
        k.vmalloc.lazy -= 1;
        for &p in &a.pages[..a.nr as usize] {
            for _ in 0..a.puts {
                k.pages.put_page(p);
            }
        }
    }
}

fn flush_reqs(v: &mut Vmalloc, reqs: &[MmuUpdate]) {
    // SAFETY: clearing vmap PTEs; no Rust reference points into a lazily freed area.
    let rc = unsafe { hypercall::mmu_update(reqs, None, DOMID_SELF) };
    assert_eq!(rc, 0, "vmap teardown: clearing PTEs refused");
    v.stats.hypercalls += 1;
    v.stats.pages_unmapped += reqs.len() as u64;
}
