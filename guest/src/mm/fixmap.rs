//! Fixed-address mappings (Linux: arch/x86/include/asm/fixmap.h), one L1 at `FIXMAP_BASE`.
//!
//! The slots let the kernel look at any frame for a moment: map, touch through a raw pointer,
//! unmap. Slot changes go through `update_va_mapping` with `UVMF_INVLPG`.
//!
//! Building it is the first time the guest makes page tables of its own, the PV way: three
//! zeroed memblock pages get their entries by plain writes (`L3[0] -> L2`, `L2[1] -> L1`), their
//! read-write bootstrap aliases are made read-only, and one `mmu_update` of the live L4 hooks
//! the chain in; Xen validates L3 -> L2 -> L1 on the spot. The L2 covers PKMAP_BASE (slot 0)
//! too, so a pkmap L1 can later be hooked at `L2[0]` with one `mmu_update`.

use pagetable_validator::abi::{domid::DOMID_SELF, uvmf, MulticallEntry};
use pagetable_validator::pte::{self, layout, PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_SIZE};

use super::memblock::Memblock;
use super::p2m::P2m;
use super::pgtable::mmu_req;
use super::{boot_va, Mfn, Pfn};
use crate::hypercall;

/// Slot for `clear_page` and similar one-shot accesses.
pub const FIX_CLEAR_PAGE: usize = 0;
/// General scratch slots for scenarios.
pub const FIX_SCRATCH_BEGIN: usize = 1;
#[allow(
    dead_code,
    reason = "documents where the scratch range ends (before FIX_KMAP_BEGIN)"
)]
pub const FIX_SCRATCH_END: usize = 15;
/// Reserved for per-CPU `kmap_atomic` slots.
pub const FIX_KMAP_BEGIN: usize = 16;
pub const FIX_KMAP_END: usize = 31;
/// Number of slots (one L1).
pub const NR_FIX: usize = pte::ENTRIES;

/// Virtual address of fixmap slot `idx`.
pub const fn fix_to_virt(idx: usize) -> u64 {
    assert!(idx < NR_FIX);
    layout::FIXMAP_BASE + (idx as u64) * PAGE_SIZE
}

/// The fixmap's page tables (all hooked into the live L4, none pinned on their own).
pub struct Fixmap {
    l3: Pfn,
    l2: Pfn,
    l1: Pfn,
}

/// Failure to build the fixmap: which step and Xen's rc.
#[derive(Debug)]
pub enum FixmapError {
    NoMemory,
    MakeReadOnly { pfn: Pfn, rc: i64 },
    Hook { rc: i64 },
}

impl core::fmt::Display for FixmapError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            FixmapError::NoMemory => write!(f, "memblock exhausted"),
            FixmapError::MakeReadOnly { pfn, rc } => {
                write!(
                    f,
                    "making the alias of pfn {:#x} read-only failed: rc={rc}",
                    pfn.0
                )
            }
            FixmapError::Hook { rc } => write!(f, "hooking the L3 into the L4 failed: rc={rc}"),
        }
    }
}

impl Fixmap {
    /// `early_fixmap_init`: builds and hooks the fixmap tables into the L4 in frame `l4`.
    pub fn init(memblock: &mut Memblock, p2m: &P2m, l4: Mfn) -> Result<Fixmap, FixmapError> {
        let pt = memblock.alloc(3).ok_or(FixmapError::NoMemory)?;
        let (l3, l2, l1) = (pt, pt.next(1), pt.next(2));
        let slot = |va: u64, level: u32| pte::table_index(va, level);
        let base = layout::FIXMAP_BASE;
        // SAFETY: memblock pages, zeroed, mapped RW at boot_va and referenced by nothing else.
        unsafe {
            let w = |pfn: Pfn, idx: usize, val: u64| {
                (boot_va(pfn) as *mut u64).add(idx).write_volatile(val)
            };
            w(
                l3,
                slot(base, 3),
                pte::mk_pte(p2m.pfn_to_mfn(l2).0, pte::PAGE_TABLE),
            );
            w(
                l2,
                slot(base, 2),
                pte::mk_pte(p2m.pfn_to_mfn(l1).0, pte::PAGE_TABLE),
            );
        }
        // Xen refuses a page-table frame that is still mapped read-write anywhere. One
        // multicall makes the three aliases read-only, then one more call hooks the L3.
        let mut calls = [MulticallEntry::default(); 3];
        for (c, pfn) in calls.iter_mut().zip([l3, l2, l1]) {
            let ro = pte::mk_pte(p2m.pfn_to_mfn(pfn).0, PAGE_KERNEL_RO);
            *c = hypercall::mc_update_va_mapping(boot_va(pfn), ro, uvmf::INVLPG);
        }
        // SAFETY: the three pages are ours and only accessed through raw pointers above.
        let rc = unsafe { hypercall::multicall(&mut calls) };
        for (c, pfn) in calls.iter().zip([l3, l2, l1]) {
            if rc != 0 || c.result != 0 {
                return Err(FixmapError::MakeReadOnly {
                    pfn,
                    rc: if rc != 0 { rc } else { c.result },
                });
            }
        }
        let hook = [mmu_req(
            l4,
            slot(base, 4),
            pte::mk_pte(p2m.pfn_to_mfn(l3).0, pte::PAGE_TABLE),
            0,
        )];
        // SAFETY: the L4 slot for FIXMAP_BASE was empty; filling it maps nothing Rust uses.
        let rc = unsafe { hypercall::mmu_update(&hook, None, DOMID_SELF) };
        if rc != 0 {
            return Err(FixmapError::Hook { rc });
        }
        Ok(Fixmap { l3, l2, l1 })
    }

    /// The L3, L2 and L1 frames of the fixmap (for diagnostics and for hooking the pkmap L1).
    pub fn tables(&self) -> (Pfn, Pfn, Pfn) {
        (self.l3, self.l2, self.l1)
    }

    /// Maps slot `idx` to `mfn` with `prot` (a PTE flag set). Returns Xen's rc.
    ///
    /// Safe because fixmap slots are only ever accessed through raw pointers (an `unsafe`
    /// dereference whose caller must know what is mapped there), never through references.
    pub fn set_fixmap(&self, idx: usize, mfn: Mfn, prot: u64) -> i64 {
        // SAFETY: see above; the slot's VA holds no Rust reference.
        unsafe {
            hypercall::update_va_mapping(fix_to_virt(idx), pte::mk_pte(mfn.0, prot), uvmf::INVLPG)
        }
    }

    /// Unmaps slot `idx`. Returns Xen's rc.
    pub fn clear_fixmap(&self, idx: usize) -> i64 {
        // SAFETY: as for set_fixmap.
        unsafe { hypercall::update_va_mapping(fix_to_virt(idx), 0, uvmf::INVLPG) }
    }

    /// Fills frame `mfn` with zeroes through [`FIX_CLEAR_PAGE`] and unmaps it again, so that
    /// no read-write alias is left behind. Returns the first failing rc.
    pub fn clear_page(&self, mfn: Mfn) -> Result<(), i64> {
        self.with_page(FIX_CLEAR_PAGE, mfn, |p| {
            // SAFETY: slot FIX_CLEAR_PAGE maps the whole frame read-write right now.
            unsafe { core::ptr::write_bytes(p, 0, pte::ENTRIES) }
        })
    }

    /// Maps `mfn` read-write at slot `idx`, runs `f` on the page (as 512 u64s), unmaps it.
    pub fn with_page<R>(
        &self,
        idx: usize,
        mfn: Mfn,
        f: impl FnOnce(*mut u64) -> R,
    ) -> Result<R, i64> {
        let rc = self.set_fixmap(idx, mfn, PAGE_KERNEL);
        if rc != 0 {
            return Err(rc);
        }
        let r = f(fix_to_virt(idx) as *mut u64);
        match self.clear_fixmap(idx) {
            0 => Ok(r),
            rc => Err(rc),
        }
    }
}
