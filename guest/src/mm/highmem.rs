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

use core::fmt;

use pagetable_validator::abi::{domid::DOMID_SELF, mmu, mmuext, uvmf, MmuUpdate, MmuextOp};
use pagetable_validator::pte::{self, layout, PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_SIZE};

use super::fixmap::{fix_to_virt, Fixmap, FIX_KMAP_BEGIN, FIX_KMAP_END};
use super::memblock::{Memblock, PfnRange};
use super::p2m::P2m;
use super::pgalloc::AliasOp;
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
    /// The caller must only pass highmem pages (see [`kmap`] for the dispatching wrapper).
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

/// The kmap alias hook for the Xen pin path ([`AliasHooks`](super::pgalloc::AliasHooks),
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
