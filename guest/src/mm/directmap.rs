//! The direct map (Linux: `PAGE_OFFSET`, arch/x86/mm/init_64.c, arch/x86/xen/mmu_pv.c
//! `xen_setup_kernel_pagetable`): every ZONE_NORMAL pfn — everything below ZONE_HIGHMEM,
//! bootstrap region included — mapped at `DIRECT_MAP_BASE + pfn * 4096`.
//!
//! This is the alias Xen PV guests trip over: every lowmem page has it, read-write, so a page
//! that is to become a page table must have it made read-only first ([`DirectMap::set_memory_ro`],
//! Linux's `make_lowmem_page_readonly`), and given back read-write after unpin.
//!
//! Built once at boot, the PV way and cheaply (guest code is emulated here): the tables
//! (one L3, the L2s, the L1s) come from memblock, get their table-to-table entries by plain
//! writes while they are still ordinary pages, have their bootstrap aliases made read-only in
//! one multicall, and are hooked into the live L4 with one `mmu_update` (Xen validates the
//! empty chain). Then the PTEs go in with `mmu_update` batches of 512 entries. Each bootstrap
//! pfn gets the protection of its bootstrap alias: page-table frames (the builder's, the
//! fixmap's, the pkmap L1, our own tables) are read-only there, so they are read-only here too.

use pagetable_validator::abi::{domid::DOMID_SELF, mmu, uvmf, MmuUpdate, MulticallEntry};
use pagetable_validator::pte::{self, layout, ENTRIES, PAGE_KERNEL, PAGE_KERNEL_RO, PAGE_SHIFT};

use super::memblock::{Memblock, PfnRange};
use super::p2m::{M2p, P2m};
use super::pgtable::{mmu_req, read_entry};
use super::{boot_va, Mfn, Pfn};
use crate::hypercall;

/// PTEs per `mmu_update` call while building.
const BATCH: usize = 512;

/// The direct map: which pfns it covers.
pub struct DirectMap {
    /// Pfns `0..end` are mapped (ZONE_HIGHMEM starts at `end`).
    end: Pfn,
    /// `mmu_update` calls made while building (for the boot line).
    pub build_hypercalls: u64,
}

/// Failure to build the direct map: which step and Xen's rc.
#[derive(Debug, Clone, Copy)]
pub enum DirectMapError {
    NoMemory,
    TooBig,
    MakeReadOnly { rc: i64 },
    Hook { rc: i64 },
    Fill { pfn: Pfn, rc: i64 },
}

impl core::fmt::Display for DirectMapError {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match *self {
            DirectMapError::NoMemory => write!(f, "memblock exhausted"),
            DirectMapError::TooBig => write!(f, "more RAM than one L3 (512 GiB) covers"),
            DirectMapError::MakeReadOnly { rc } => {
                write!(f, "making the tables' bootstrap aliases read-only: rc={rc}")
            }
            DirectMapError::Hook { rc } => write!(f, "hooking the L3 into the L4: rc={rc}"),
            DirectMapError::Fill { pfn, rc } => {
                write!(f, "mapping pfns from {:#x}: rc={rc}", pfn.0)
            }
        }
    }
}

/// `__va(pfn)` for a direct-mapped pfn (no range check).
pub const fn direct_va(pfn: Pfn) -> u64 {
    layout::DIRECT_MAP_BASE + (pfn.0 << PAGE_SHIFT)
}

/// Boot-time facts the builder needs.
pub struct BootTables<'a> {
    pub p2m: &'a P2m,
    pub m2p: &'a M2p,
    /// The live (bootstrap) L4 and its virtual address.
    pub l4: Mfn,
    pub l4_va: u64,
    /// The bootstrap region (pfns mapped at `boot_va`).
    pub bootstrap: PfnRange,
}

impl DirectMap {
    /// Maps pfns `0..end` (`end` = first ZONE_HIGHMEM pfn). Call after every boot-time page
    /// table has been made read-only in its bootstrap alias.
    pub fn init(mb: &mut Memblock, bt: &BootTables, end: Pfn) -> Result<DirectMap, DirectMapError> {
        let nr_l1 = end.0.div_ceil(ENTRIES as u64).max(1);
        let nr_l2 = nr_l1.div_ceil(ENTRIES as u64);
        if nr_l2 > ENTRIES as u64 {
            return Err(DirectMapError::TooBig);
        }
        let n = 1 + nr_l2 + nr_l1;
        let start = mb.alloc(n).ok_or(DirectMapError::NoMemory)?;
        let tables = PfnRange::new(start.0, start.0 + n);
        let (l3, l2s, l1s) = (start, start.next(1), start.next(1 + nr_l2));
        let mfn = |p: Pfn| bt.p2m.pfn_to_mfn(p);
        // SAFETY: fresh memblock pages, zeroed, mapped RW at boot_va, referenced by nothing
        // else yet (not page tables until hooked in below).
        unsafe {
            let w = |t: Pfn, i: usize, v: u64| (boot_va(t) as *mut u64).add(i).write_volatile(v);
            for i in 0..nr_l2 {
                w(
                    l3,
                    i as usize,
                    pte::mk_pte(mfn(l2s.next(i)).0, pte::PAGE_TABLE),
                );
            }
            for i in 0..nr_l1 {
                let (l2, slot) = (l2s.next(i / ENTRIES as u64), (i % ENTRIES as u64) as usize);
                w(l2, slot, pte::mk_pte(mfn(l1s.next(i)).0, pte::PAGE_TABLE));
            }
        }
        // Xen validates the chain when it is hooked in: no table may be writable anywhere.
        let mut calls = [MulticallEntry::default(); 64];
        let mut p = tables.start;
        while p < tables.end {
            let k = ((tables.end.0 - p.0) as usize).min(calls.len());
            for (i, c) in calls[..k].iter_mut().enumerate() {
                let t = p.next(i as u64);
                let ro = pte::mk_pte(mfn(t).0, PAGE_KERNEL_RO);
                *c = hypercall::mc_update_va_mapping(boot_va(t), ro, uvmf::INVLPG);
            }
            // SAFETY: the pages are ours and only accessed through raw pointers above.
            let rc = unsafe { hypercall::multicall(&mut calls[..k]) };
            if let Some(rc) = core::iter::once(rc)
                .chain(calls[..k].iter().map(|c| c.result))
                .find(|&rc| rc != 0)
            {
                return Err(DirectMapError::MakeReadOnly { rc });
            }
            p = p.next(k as u64);
        }
        let hook = [mmu_req(
            bt.l4,
            pte::table_index(layout::DIRECT_MAP_BASE, 4),
            pte::mk_pte(mfn(l3).0, pte::PAGE_TABLE),
            mmu::NORMAL_PT_UPDATE,
        )];
        // SAFETY: the L4 slot of the direct map was empty; the new chain maps nothing yet.
        let rc = unsafe { hypercall::mmu_update(&hook, None, DOMID_SELF) };
        if rc != 0 {
            return Err(DirectMapError::Hook { rc });
        }
        let mut dm = DirectMap {
            end,
            build_hypercalls: 1,
        };
        dm.fill(bt, l1s)?;
        Ok(dm)
    }

    /// Writes the PTEs of pfns `0..end`, 512 per `mmu_update`.
    fn fill(&mut self, bt: &BootTables, l1s: Pfn) -> Result<(), DirectMapError> {
        let mut reqs = [MmuUpdate { ptr: 0, val: 0 }; BATCH];
        let mut boot_l1: Option<u64> = None;
        let mut pfn = Pfn(0);
        while pfn < self.end {
            let k = ((self.end.0 - pfn.0) as usize).min(BATCH);
            let first = pfn;
            for r in reqs[..k].iter_mut() {
                if bt.bootstrap.contains(pfn) && pfn.0.is_multiple_of(ENTRIES as u64) {
                    boot_l1 = Some(boot_l1_va(bt, pfn));
                }
                let prot = match boot_l1 {
                    Some(l1) if bt.bootstrap.contains(pfn) => {
                        // SAFETY: l1 is a bootstrap L1, mapped read-only for good.
                        let e = unsafe { read_entry(l1, (pfn.0 % ENTRIES as u64) as usize) };
                        if pte::pte_write(e) {
                            PAGE_KERNEL
                        } else {
                            PAGE_KERNEL_RO
                        }
                    }
                    _ => PAGE_KERNEL,
                };
                let table = bt.p2m.pfn_to_mfn(l1s.next(pfn.0 / ENTRIES as u64));
                *r = mmu_req(
                    table,
                    (pfn.0 % ENTRIES as u64) as usize,
                    pte::mk_pte(bt.p2m.pfn_to_mfn(pfn).0, prot),
                    mmu::NORMAL_PT_UPDATE,
                );
                pfn = pfn.next(1);
            }
            // SAFETY: the entries only add mappings in the new direct-map range.
            let rc = unsafe { hypercall::mmu_update(&reqs[..k], None, DOMID_SELF) };
            self.build_hypercalls += 1;
            if rc != 0 {
                return Err(DirectMapError::Fill { pfn: first, rc });
            }
        }
        Ok(())
    }

    /// `page_address(pfn)`: the direct-map VA of a lowmem pfn, `None` for highmem.
    pub fn page_address(&self, pfn: Pfn) -> Option<u64> {
        (pfn < self.end).then(|| direct_va(pfn))
    }

    /// A multicall entry that sets the direct-map alias of `pfn` read-only (`ro`) or
    /// read-write; `None` for a pfn without alias (highmem).
    pub fn mc_set_memory(&self, p2m: &P2m, pfn: Pfn, ro: bool) -> Option<MulticallEntry> {
        let va = self.page_address(pfn)?;
        let prot = if ro { PAGE_KERNEL_RO } else { PAGE_KERNEL };
        let val = pte::mk_pte(p2m.pfn_to_mfn(pfn).0, prot);
        Some(hypercall::mc_update_va_mapping(va, val, uvmf::INVLPG))
    }

    /// `set_memory_ro` / `make_lowmem_page_readonly`: the direct-map alias of `pfn` becomes
    /// read-only. Returns Xen's rc; 0 without doing anything for a highmem pfn (no alias).
    pub fn set_memory_ro(&self, p2m: &P2m, pfn: Pfn) -> i64 {
        self.set_memory(p2m, pfn, true)
    }

    /// `set_memory_rw` / `make_lowmem_page_readwrite`: the alias becomes read-write again
    /// (refused with -16 while the frame is a pinned page table). 0 for highmem.
    pub fn set_memory_rw(&self, p2m: &P2m, pfn: Pfn) -> i64 {
        self.set_memory(p2m, pfn, false)
    }

    fn set_memory(&self, p2m: &P2m, pfn: Pfn, ro: bool) -> i64 {
        let Some(va) = self.page_address(pfn) else {
            return 0;
        };
        let prot = if ro { PAGE_KERNEL_RO } else { PAGE_KERNEL };
        // SAFETY: callers change the protection of pages they own and do not hold Rust
        // references into (page-table pages, scenario pages).
        unsafe {
            hypercall::update_va_mapping(va, pte::mk_pte(p2m.pfn_to_mfn(pfn).0, prot), uvmf::INVLPG)
        }
    }
}

/// The virtual address (in the bootstrap region) of the bootstrap L1 that maps `pfn` at
/// `boot_va(pfn)`. The walk was checked at boot (`probe_bootstrap_end`).
fn boot_l1_va(bt: &BootTables, pfn: Pfn) -> u64 {
    let va = boot_va(pfn);
    let next = |table_va: u64, level: u32| -> u64 {
        // SAFETY: table_va is a bootstrap page-table frame, mapped read-only for good.
        let e = unsafe { read_entry(table_va, pte::table_index(va, level)) };
        let pfn = bt
            .m2p
            .mfn_to_pfn(Mfn(pte::pte_mfn(e)))
            .expect("direct map: bootstrap table outside RAM");
        boot_va(pfn)
    };
    next(next(next(bt.l4_va, 4), 3), 2)
}
