//! Atomic kmap (Linux: `kmap_atomic_prot`, `kunmap_atomic`): per-CPU fixmap slots used as a
//! stack, mapped and unmapped eagerly.

use super::{AtomicSlot, Highmem, KmapError, KM_TYPE_NR};
use crate::mm::fixmap::{fix_to_virt, Fixmap, FIX_KMAP_BEGIN, FIX_KMAP_END};
use crate::mm::p2m::P2m;
use crate::mm::Pfn;

impl Highmem {
    /// `kmap_atomic_prot` for a highmem page: the next atomic fixmap slot, mapped with `prot`.
    pub fn kmap_atomic_high(
        &mut self,
        p2m: &P2m,
        fixmap: &Fixmap,
        pfn: Pfn,
        prot: u64,
    ) -> Result<u64, KmapError> {
        let idx = self.atomic_depth;
        if idx == KM_TYPE_NR {
            return Err(KmapError::AtomicOverflow);
        }
        let rc = fixmap.set_fixmap(FIX_KMAP_BEGIN + idx, p2m.pfn_to_mfn(pfn), prot);
        if rc != 0 {
            return Err(KmapError::Hypercall {
                what: "kmap_atomic set_pte",
                rc,
            });
        }
        self.stats.kmap_atomics += 1;
        self.atomic[idx] = Some(AtomicSlot {
            pfn,
            prot,
            downgraded: false,
        });
        self.atomic_depth += 1;
        Ok(fix_to_virt(FIX_KMAP_BEGIN + idx))
    }

    /// `kunmap_atomic` of an atomic slot: must be the most recent one (a stack, as in Linux).
    /// Clears the PTE and flushes it at once (`kpte_clear_flush`).
    pub fn kunmap_atomic_high(&mut self, fixmap: &Fixmap, va: u64) -> Result<(), KmapError> {
        let top = self.atomic_depth.checked_sub(1);
        if top.map(|i| fix_to_virt(FIX_KMAP_BEGIN + i)) != Some(va) {
            return Err(KmapError::AtomicOrder { va });
        }
        let idx = self.atomic_depth - 1;
        let rc = fixmap.clear_fixmap(FIX_KMAP_BEGIN + idx);
        if rc != 0 {
            return Err(KmapError::Hypercall {
                what: "kunmap_atomic clear",
                rc,
            });
        }
        self.stats.kunmap_atomics += 1;
        self.atomic[idx] = None;
        self.atomic_depth = idx;
        Ok(())
    }

    /// Whether `va` is one of the atomic slots (as opposed to a lowmem `page_address`).
    pub fn is_atomic_va(va: u64) -> bool {
        (fix_to_virt(FIX_KMAP_BEGIN)..=fix_to_virt(FIX_KMAP_END)).contains(&va)
    }
}
