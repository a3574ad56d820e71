//! Highmem (Linux: mm/highmem.c, arch/x86/mm/highmem_32.c, arch/x86/xen/mmu_pv.c).
//!
//! Pages of ZONE_HIGHMEM have no permanent kernel mapping; to touch one the kernel maps it:
//!
//! * **Persistent kmap** (`kmap`/`kunmap`): one L1 of [`LAST_PKMAP`] slots at `PKMAP_BASE`,
//!   hooked at L2 slot 0 of the fixmap's L2. `pkmap_count[nr]` is 0 for a free slot, 1 for a
//!   slot that nobody uses but that *still maps its page* (kunmap only drops the count), and
//!   1 + users otherwise. Stale slots are torn down only by [`Highmem::flush_all_zero_pkmaps`],
//!   when the slot cursor wraps or when [`Highmem::kmap_flush_unused`] asks for it: all
//!   count==1 slots are cleared in one batch with one TLB flush. Until then a freed page can
//!   still be mapped read-write at its old slot, and Xen refuses to pin it as a page table.
//!   Linux's Xen pin path therefore calls `kmap_flush_unused()` whenever it pins a highmem
//!   page ([`Highmem::xen_pin_prepare`]).
//! * **Atomic kmap** (`kmap_atomic`/`kunmap_atomic`): per-CPU fixmap slots
//!   `FIX_KMAP_BEGIN..=FIX_KMAP_END` used as a stack, mapped and unmapped eagerly with
//!   `update_va_mapping(.., UVMF_INVLPG)`. A page-table page that lives in highmem must be
//!   mapped read-only this way once it is pinned (Linux: `kmap_atomic_pte`), or Xen refuses.
//!
//! Lowmem pages need neither: `kmap` of a page the direct map covers returns its
//! `page_address()`; the wrappers that decide that live with the zones (see [`kmap`]).
//!
//! Split by mechanism: [`pkmap`] (persistent slots and their lazy flush), [`atomic`] (the
//! `kmap_atomic` stack) and [`alias`] (the Xen pin-path hook that reconciles both with a pin).

mod alias;
mod atomic;
mod pkmap;

pub use alias::kmap_alias_hook;

use core::fmt;

use pagetable_validator::abi::{domid::DOMID_SELF, mmu, uvmf, MmuextOp};
use pagetable_validator::pte::{self, layout, PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_SIZE};

use super::fixmap::{Fixmap, FIX_KMAP_BEGIN, FIX_KMAP_END};
use super::memblock::{Memblock, PfnRange};
use super::p2m::P2m;
use super::pgtable::mmu_req;
use super::{boot_va, Mfn, Pfn};
use crate::hypercall;
use crate::setup::Kernel;

/// Number of persistent kmap slots (one L1).
pub const LAST_PKMAP: usize = pte::ENTRIES;
/// Number of `kmap_atomic` slots of our one CPU.
pub const KM_TYPE_NR: usize = FIX_KMAP_END - FIX_KMAP_BEGIN + 1;

/// Virtual address of pkmap slot `nr` (Linux: `PKMAP_ADDR`).
pub const fn pkmap_addr(nr: usize) -> u64 {
    assert!(nr < LAST_PKMAP);
    layout::PKMAP_BASE + (nr as u64) * PAGE_SIZE
}

/// Work counts, for the scenarios' `COUNTS` lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct KmapStats {
    /// `kmap` calls on highmem pages, and `kunmap` calls.
    pub kmaps: u64,
    pub kunmaps: u64,
    /// Slots that got a new PTE (a `kmap` that found no existing mapping).
    pub pkmap_maps: u64,
    /// `flush_all_zero_pkmaps` runs that cleared at least one slot, and the slots cleared.
    pub pkmap_flushes: u64,
    pub slots_flushed: u64,
    /// Hypercalls issued to tear pkmap slots down (clears + TLB flush).
    pub flush_hypercalls: u64,
    /// `kmap_atomic` / `kunmap_atomic` calls that used a fixmap slot.
    pub kmap_atomics: u64,
    pub kunmap_atomics: u64,
}

/// Why a kmap operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmapError {
    /// The hypervisor refused a PTE write or flush: which step and its rc.
    Hypercall { what: &'static str, rc: i64 },
    /// Every pkmap slot is in use (Linux would sleep until a `kunmap`).
    NoFreeSlot,
    /// Every `kmap_atomic` slot is in use (nesting deeper than [`KM_TYPE_NR`]).
    AtomicOverflow,
    /// `kunmap` of a page that has no pkmap slot, or whose slot is unused (Linux: `BUG()`).
    NotMapped(Pfn),
    /// `kunmap_atomic` out of stack order or of an address that is no atomic slot.
    AtomicOrder { va: u64 },
    /// Building the pkmap L1 failed.
    Init { what: &'static str, rc: i64 },
}

impl KmapError {
    /// Xen's rc when the hypervisor refused, else -1 (a guest-side bug, not Xen's verdict).
    pub fn rc(&self) -> i64 {
        match *self {
            KmapError::Hypercall { rc, .. } | KmapError::Init { rc, .. } => rc,
            _ => -1,
        }
    }
}

impl fmt::Display for KmapError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match *self {
            KmapError::Hypercall { what, rc } => write!(f, "{what} refused: rc={rc}"),
            KmapError::NoFreeSlot => write!(f, "no free pkmap slot"),
            KmapError::AtomicOverflow => write!(f, "kmap_atomic slots exhausted"),
            KmapError::NotMapped(pfn) => {
                write!(f, "kunmap of pfn {:#x}, which is not kmapped", pfn.0)
            }
            KmapError::AtomicOrder { va } => write!(f, "kunmap_atomic({va:#x}) out of order"),
            KmapError::Init { what, rc } => write!(f, "pkmap init: {what} failed: rc={rc}"),
        }
    }
}

/// One `mmuext_op` without a frame argument (TLB flushes).
fn mmuext_plain(cmd: u32) -> MmuextOp {
    MmuextOp {
        cmd,
        _pad: 0,
        arg1: 0,
        arg2: 0,
    }
}

/// Highmem state: the pkmap window and this CPU's `kmap_atomic` stack.
pub struct Highmem {
    /// The pkmap L1 (`pkmap_page_table`).
    l1: Mfn,
    /// `pkmap_count[nr]`: 0 free, 1 unused but still mapped, 1 + users otherwise.
    pkmap_count: &'static mut [u32],
    /// The pfn each slot maps, 0 for none (pfn 0 is never highmem).
    pkmap_page: &'static mut [u64],
    /// ZONE_HIGHMEM, and per highmem pfn its slot + 1, 0 for none: the reverse of
    /// `pkmap_page` (Linux: `page_address_htable`). A direct index, because guest code runs
    /// emulated here and a 512-entry scan per kmap costs milliseconds.
    zone: PfnRange,
    pkmap_of: &'static mut [u16],
    /// Slots with count 1 (unused but mapped): lets a flush with nothing to do return at once.
    nr_unused: usize,
    /// Whether the slot's PTE was made read-only by [`Highmem::xen_pin_prepare`] (kmap
    /// itself always maps read-write).
    pkmap_ro: &'static mut [bool],
    /// The slot cursor (`last_pkmap_nr`).
    last_pkmap_nr: usize,
    /// `kmap_atomic_idx`: the number of atomic slots in use, and what each maps.
    atomic_depth: usize,
    atomic: [Option<AtomicSlot>; KM_TYPE_NR],
    /// Whether the Xen pin path takes care of kmap aliases ([`Highmem::xen_pin_prepare`]).
    /// Linux got this in 2007 (`kmap_flush_unused()` in the pin path); `false` is the kernel
    /// before that fix.
    pub flush_on_pin: bool,
    pub stats: KmapStats,
}

/// One `kmap_atomic` slot in use.
#[derive(Clone, Copy, Debug)]
struct AtomicSlot {
    pfn: Pfn,
    /// The protection the user asked for.
    prot: u64,
    /// Made read-only by the pin path (to be given back by the unpin path).
    downgraded: bool,
}

impl Highmem {
    /// `permanent_kmaps_init`: builds the pkmap L1 from a memblock page and hooks it at L2
    /// slot 0 of the fixmap's L2 (which covers `PKMAP_BASE`).
    ///
    /// Like every page-table frame, the L1 must have no read-write alias when Xen validates
    /// it: the bootstrap alias is made read-only first; the page is not direct-mapped yet
    /// (the direct map, built later, maps known page-table frames read-only).
    /// `zone` is ZONE_HIGHMEM: the only pfns `kmap_high` accepts.
    pub fn init(
        memblock: &mut Memblock,
        p2m: &P2m,
        fixmap: &Fixmap,
        zone: PfnRange,
    ) -> Result<Highmem, KmapError> {
        let oom = KmapError::Init {
            what: "memblock",
            rc: -12,
        };
        let l1 = memblock.alloc(1).ok_or(oom)?;
        // SAFETY: u32/u64/bool/u16 are valid when zero (every slot free, not RO, no page
        // mapped).
        let (pkmap_count, pkmap_page, pkmap_ro, pkmap_of) = unsafe {
            (
                memblock.alloc_array::<u32>(LAST_PKMAP).ok_or(oom)?,
                memblock.alloc_array::<u64>(LAST_PKMAP).ok_or(oom)?,
                memblock.alloc_array::<bool>(LAST_PKMAP).ok_or(oom)?,
                memblock
                    .alloc_array::<u16>(zone.len() as usize)
                    .ok_or(oom)?,
            )
        };
        let l1_mfn = p2m.pfn_to_mfn(l1);
        // SAFETY: a fresh memblock page (zeroed, mapped only at boot_va, used by nobody).
        let rc = unsafe {
            hypercall::update_va_mapping(
                boot_va(l1),
                pte::mk_pte(l1_mfn.0, PAGE_KERNEL_RO),
                uvmf::INVLPG,
            )
        };
        if rc != 0 {
            return Err(KmapError::Init {
                what: "making the L1's bootstrap alias read-only",
                rc,
            });
        }
        let (_, l2, _) = fixmap.tables();
        let hook = [mmu_req(
            p2m.pfn_to_mfn(l2),
            pte::table_index(layout::PKMAP_BASE, 2),
            pte::mk_pte(l1_mfn.0, pte::PAGE_TABLE),
            mmu::NORMAL_PT_UPDATE,
        )];
        // SAFETY: the L2 slot for PKMAP_BASE was empty; the new L1 maps nothing yet.
        let rc = unsafe { hypercall::mmu_update(&hook, None, DOMID_SELF) };
        if rc != 0 {
            return Err(KmapError::Init {
                what: "hooking the pkmap L1 into the fixmap L2",
                rc,
            });
        }
        Ok(Highmem {
            l1: l1_mfn,
            pkmap_count,
            pkmap_page,
            pkmap_ro,
            zone,
            pkmap_of,
            nr_unused: 0,
            last_pkmap_nr: 0,
            atomic_depth: 0,
            atomic: [None; KM_TYPE_NR],
            flush_on_pin: true,
            stats: KmapStats::default(),
        })
    }
}

// The kernel-level API (Linux: include/linux/highmem.h): lowmem pages are served by the
// direct map, highmem pages by the state above.

/// `kmap`: the direct-map address of a lowmem page, or a pkmap slot for a highmem page.
pub fn kmap(k: &mut Kernel, pfn: Pfn) -> Result<u64, KmapError> {
    if !k.pages.page_high_mem(pfn) {
        return Ok(lowmem_address(k, pfn));
    }
    k.highmem.kmap_high(&k.p2m, pfn)
}

/// `kunmap`: nothing for a lowmem page; drops the pkmap reference of a highmem page (lazily:
/// the slot stays mapped until the next `flush_all_zero_pkmaps`).
pub fn kunmap(k: &mut Kernel, pfn: Pfn) -> Result<(), KmapError> {
    if !k.pages.page_high_mem(pfn) {
        return Ok(());
    }
    k.highmem.kunmap_high(pfn)
}

/// `kmap_atomic`: like [`kmap_atomic_prot`] with `PAGE_KERNEL` (read-write).
pub fn kmap_atomic(k: &mut Kernel, pfn: Pfn) -> Result<u64, KmapError> {
    kmap_atomic_prot(k, pfn, PAGE_KERNEL)
}

/// `kmap_atomic_prot`: the direct-map address of a lowmem page, or the next atomic fixmap
/// slot mapped with `prot` for a highmem page. A pinned page-table page must be mapped with
/// `PAGE_KERNEL_RO` (Linux's Xen `kmap_atomic_pte`): Xen refuses a writable mapping of it.
pub fn kmap_atomic_prot(k: &mut Kernel, pfn: Pfn, prot: u64) -> Result<u64, KmapError> {
    if !k.pages.page_high_mem(pfn) {
        return Ok(lowmem_address(k, pfn));
    }
    k.highmem.kmap_atomic_high(&k.p2m, &k.fixmap, pfn, prot)
}

/// `kunmap_atomic`: unmaps an atomic slot at once; nothing for a lowmem address.
pub fn kunmap_atomic(k: &mut Kernel, va: u64) -> Result<(), KmapError> {
    if !Highmem::is_atomic_va(va) {
        return Ok(());
    }
    k.highmem.kunmap_atomic_high(&k.fixmap, va)
}

/// `clear_highpage`: zeroes any page through `kmap_atomic`, leaving no mapping behind.
pub fn clear_highpage(k: &mut Kernel, pfn: Pfn) -> Result<(), KmapError> {
    let va = kmap_atomic(k, pfn)?;
    // SAFETY: va maps the whole page read-write (atomic slot or direct map) until the
    // kunmap_atomic below; nothing else refers to the page's contents.
    unsafe { core::ptr::write_bytes(va as *mut u64, 0, pte::ENTRIES) };
    kunmap_atomic(k, va)
}

/// `kmap_flush_unused`: tears down every stale pkmap slot now. Returns the slots cleared.
pub fn kmap_flush_unused(k: &mut Kernel) -> Result<usize, KmapError> {
    k.highmem.kmap_flush_unused()
}

fn lowmem_address(k: &Kernel, pfn: Pfn) -> u64 {
    k.directmap
        .page_address(pfn)
        .unwrap_or_else(|| panic!("kmap: lowmem pfn {:#x} is not direct-mapped", pfn.0))
}
