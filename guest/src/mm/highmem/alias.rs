//! The Xen pin-path alias hook (Linux: `kmap_flush_unused()` in `__xen_pgd_pin`,
//! `kmap_atomic_pte`): before a highmem frame is pinned, no kmap slot may map it read-write.

use pagetable_validator::abi::uvmf;
use pagetable_validator::pte::{self, PAGE_KERNEL, PAGE_KERNEL_RO};

use super::{pkmap_addr, Highmem, KmapError};
use crate::hypercall;
use crate::mm::fixmap::{Fixmap, FIX_KMAP_BEGIN};
use crate::mm::p2m::P2m;
use crate::mm::pgalloc::AliasOp;
use crate::mm::Pfn;
use crate::setup::Kernel;

impl Highmem {
    /// The pin half of the alias hook, for a highmem frame about to be pinned as a page table
    /// (Linux: `xen_pin_page` reports a highmem page, and `__xen_pgd_pin` then calls
    /// `kmap_flush_unused()`).
    ///
    /// Stale pkmap slots are flushed; a pkmap slot still in use, or an atomic slot, that maps
    /// `pfn` read-write is remapped read-only (what Linux's `kmap_atomic_pte` gives a pinned
    /// table), so the pin can succeed and the user keeps read access. Returns the hypercalls
    /// issued.
    pub fn xen_pin_prepare(
        &mut self,
        p2m: &P2m,
        fixmap: &Fixmap,
        pfn: Pfn,
    ) -> Result<u32, KmapError> {
        self.set_alias_prot(p2m, fixmap, pfn, true)
    }

    /// The unpin half of the alias hook (also run after a refused pin): slots that
    /// [`xen_pin_prepare`](Self::xen_pin_prepare) made read-only get their read-write mapping
    /// back. Returns the hypercalls issued.
    pub fn xen_unpin_restore(
        &mut self,
        p2m: &P2m,
        fixmap: &Fixmap,
        pfn: Pfn,
    ) -> Result<u32, KmapError> {
        self.set_alias_prot(p2m, fixmap, pfn, false)
    }

    fn set_alias_prot(
        &mut self,
        p2m: &P2m,
        fixmap: &Fixmap,
        pfn: Pfn,
        ro: bool,
    ) -> Result<u32, KmapError> {
        let mut calls = 0;
        if ro && self.flush_all_zero_pkmaps()? > 0 {
            calls += 1;
        }
        let mfn = p2m.pfn_to_mfn(pfn);
        if let Some(nr) = self.pkmap_slot(pfn).filter(|&nr| self.pkmap_ro[nr] != ro) {
            let prot = if ro { PAGE_KERNEL_RO } else { PAGE_KERNEL };
            // SAFETY: pkmap slots only hand out raw pointers; the page stays mapped.
            let rc = unsafe {
                hypercall::update_va_mapping(pkmap_addr(nr), pte::mk_pte(mfn.0, prot), uvmf::INVLPG)
            };
            calls += 1;
            if rc != 0 {
                return Err(KmapError::Hypercall {
                    what: "pkmap slot protection",
                    rc,
                });
            }
            self.pkmap_ro[nr] = ro;
        }
        for (i, slot) in self.atomic[..self.atomic_depth].iter_mut().enumerate() {
            let Some(a) = slot.as_mut().filter(|a| a.pfn == pfn) else {
                continue;
            };
            let change = if ro {
                pte::pte_write(a.prot) && !a.downgraded
            } else {
                a.downgraded
            };
            if !change {
                continue;
            }
            let prot = if ro { PAGE_KERNEL_RO } else { a.prot };
            let rc = fixmap.set_fixmap(FIX_KMAP_BEGIN + i, mfn, prot);
            calls += 1;
            if rc != 0 {
                return Err(KmapError::Hypercall {
                    what: "kmap_atomic slot protection",
                    rc,
                });
            }
            a.downgraded = ro;
        }
        Ok(calls)
    }
}

/// The kmap alias hook for the Xen pin path ([`AliasHooks`](crate::mm::pgalloc::AliasHooks),
/// registered at boot): before a highmem frame is pinned, [`Highmem::xen_pin_prepare`];
/// after it is unpinned (or its pin refused), [`Highmem::xen_unpin_restore`]. Lowmem frames
/// have no kmap alias of their own (kmap returns their direct-map address). Does nothing when
/// `flush_on_pin` is off (the kernel before the fix). Returns 0 or Xen's rc.
pub fn kmap_alias_hook(k: &mut Kernel, pfn: Pfn, op: AliasOp) -> i64 {
    if !k.pages.page_high_mem(pfn) || !k.highmem.flush_on_pin {
        return 0;
    }
    let r = match op {
        AliasOp::MakeReadOnly => k.highmem.xen_pin_prepare(&k.p2m, &k.fixmap, pfn),
        AliasOp::MakeWritable => k.highmem.xen_unpin_restore(&k.p2m, &k.fixmap, pfn),
    };
    r.map_or_else(|e| e.rc(), |_| 0)
}
