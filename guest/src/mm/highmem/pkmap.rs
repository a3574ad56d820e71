//! Persistent kmap (Linux: `kmap_high`, `map_new_virtual`, `flush_all_zero_pkmaps`): one L1
//! of slots whose teardown is deferred until the cursor wraps or a flush is asked for.

use pagetable_validator::abi::{domid::DOMID_SELF, mmu, mmuext, MmuUpdate};
use pagetable_validator::pte::{self, PAGE_KERNEL};

use super::{mmuext_plain, pkmap_addr, Highmem, KmapError, LAST_PKMAP};
use crate::hypercall;
use crate::mm::p2m::P2m;
use crate::mm::pgtable::mmu_req;
use crate::mm::Pfn;

impl Highmem {
    /// The pkmap slot that currently maps `pfn` (count >= 1), if any.
    pub fn pkmap_slot(&self, pfn: Pfn) -> Option<usize> {
        let i = pfn.0.checked_sub(self.zone.start.0)?;
        let slot = *self.pkmap_of.get(i as usize)?;
        (slot as usize).checked_sub(1)
    }

    /// Records that slot `nr` maps `pfn` (or, with `None`, nothing any more).
    fn set_page_address(&mut self, nr: usize, pfn: Option<Pfn>) {
        let old = core::mem::replace(&mut self.pkmap_page[nr], pfn.map_or(0, |p| p.0));
        if old != 0 {
            self.pkmap_of[(old - self.zone.start.0) as usize] = 0;
        }
        if let Some(p) = pfn {
            self.pkmap_of[(p.0 - self.zone.start.0) as usize] = nr as u16 + 1;
        }
    }

    /// `pkmap_count` of slot `nr` (for scenarios and checks).
    pub fn pkmap_count(&self, nr: usize) -> u32 {
        self.pkmap_count[nr]
    }

    /// Writes pkmap PTE `nr` (Linux: `set_pte_at(&init_mm, ...)`, an `mmu_update` under PV).
    fn set_pkmap_pte(&self, nr: usize, val: u64) -> i64 {
        let req = [mmu_req(self.l1, nr, val, mmu::NORMAL_PT_UPDATE)];
        // SAFETY: pkmap slots are only reached through raw pointers handed out by kmap.
        unsafe { hypercall::mmu_update(&req, None, DOMID_SELF) }
    }

    /// `kmap_high`: maps highmem page `pfn` read-write at a pkmap slot (or takes one more
    /// reference on its existing slot) and returns the virtual address.
    ///
    /// The caller must only pass highmem pages (see [`kmap`](super::kmap) for the dispatching wrapper).
    pub fn kmap_high(&mut self, p2m: &P2m, pfn: Pfn) -> Result<u64, KmapError> {
        assert!(
            self.zone.contains(pfn),
            "kmap_high: pfn {:#x} is not highmem",
            pfn.0
        );
        self.stats.kmaps += 1;
        let nr = match self.pkmap_slot(pfn) {
            Some(nr) => nr,
            None => self.map_new_virtual(p2m, pfn)?,
        };
        if self.pkmap_count[nr] == 1 {
            self.nr_unused -= 1;
        }
        self.pkmap_count[nr] += 1;
        Ok(pkmap_addr(nr))
    }

    /// `map_new_virtual`: the next free slot after the cursor; a wrap to slot 0 first flushes
    /// every unused slot. Leaves the slot with count 1 (the caller adds its own reference).
    fn map_new_virtual(&mut self, p2m: &P2m, pfn: Pfn) -> Result<usize, KmapError> {
        let mut count = LAST_PKMAP;
        let nr = loop {
            self.last_pkmap_nr = (self.last_pkmap_nr + 1) % LAST_PKMAP;
            if self.last_pkmap_nr == 0 {
                self.flush_all_zero_pkmaps()?;
                count = LAST_PKMAP;
            }
            if self.pkmap_count[self.last_pkmap_nr] == 0 {
                break self.last_pkmap_nr;
            }
            count -= 1;
            if count == 0 {
                return Err(KmapError::NoFreeSlot);
            }
        };
        let rc = self.set_pkmap_pte(nr, pte::mk_pte(p2m.pfn_to_mfn(pfn).0, PAGE_KERNEL));
        if rc != 0 {
            return Err(KmapError::Hypercall {
                what: "pkmap set_pte",
                rc,
            });
        }
        self.stats.pkmap_maps += 1;
        self.pkmap_count[nr] = 1;
        self.nr_unused += 1;
        self.set_page_address(nr, Some(pfn));
        self.pkmap_ro[nr] = false;
        Ok(nr)
    }

    /// `kunmap_high`: drops one reference. The slot keeps mapping the page (count 1) until
    /// the next [`flush_all_zero_pkmaps`](Self::flush_all_zero_pkmaps): no hypercall here.
    pub fn kunmap_high(&mut self, pfn: Pfn) -> Result<(), KmapError> {
        let nr = self.pkmap_slot(pfn).ok_or(KmapError::NotMapped(pfn))?;
        if self.pkmap_count[nr] < 2 {
            return Err(KmapError::NotMapped(pfn));
        }
        self.stats.kunmaps += 1;
        self.pkmap_count[nr] -= 1;
        if self.pkmap_count[nr] == 1 {
            self.nr_unused += 1;
        }
        Ok(())
    }

    /// `flush_all_zero_pkmaps`: clears every unused-but-mapped slot (count 1) and frees it,
    /// then flushes the TLB once. Under PV that is one multicall: an `mmu_update` batch of all
    /// the clears plus one `MMUEXT_TLB_FLUSH_ALL` (Linux batches the same way in lazy MMU
    /// mode). Returns how many slots it cleared.
    pub fn flush_all_zero_pkmaps(&mut self) -> Result<usize, KmapError> {
        if self.nr_unused == 0 {
            return Ok(0);
        }
        let mut reqs = [MmuUpdate::default(); LAST_PKMAP];
        let mut n = 0;
        for nr in 0..LAST_PKMAP {
            if self.pkmap_count[nr] != 1 {
                continue;
            }
            reqs[n] = mmu_req(self.l1, nr, 0, mmu::NORMAL_PT_UPDATE);
            n += 1;
        }
        if n == 0 {
            return Ok(0);
        }
        let flush = [mmuext_plain(mmuext::TLB_FLUSH_ALL)];
        let mut calls = [
            hypercall::mc_mmu_update(&reqs[..n]),
            hypercall::mc_mmuext_op(&flush),
        ];
        // SAFETY: only unused pkmap slots are cleared; no live reference points into them.
        let rc = unsafe { hypercall::multicall(&mut calls) };
        self.stats.flush_hypercalls += 1;
        let rc = [rc, calls[0].result, calls[1].result]
            .into_iter()
            .find(|&rc| rc != 0)
            .unwrap_or(0);
        if rc != 0 {
            return Err(KmapError::Hypercall {
                what: "flush_all_zero_pkmaps",
                rc,
            });
        }
        for r in &reqs[..n] {
            let nr = ((r.ptr & !mmu::CMD_MASK) - self.l1.maddr()) as usize / 8;
            self.pkmap_count[nr] = 0;
            self.set_page_address(nr, None);
            self.pkmap_ro[nr] = false;
        }
        self.nr_unused = 0;
        self.stats.pkmap_flushes += 1;
        self.stats.slots_flushed += n as u64;
        Ok(n)
    }

    /// `kmap_flush_unused`: tears down every stale (unused) pkmap slot now.
    pub fn kmap_flush_unused(&mut self) -> Result<usize, KmapError> {
        self.flush_all_zero_pkmaps()
    }
}
