//! Page-table pages and address spaces the Linux Xen PV way (Linux: arch/x86/mm/pgtable.c,
//! arch/x86/xen/mmu_pv.c `xen_pgd_pin`, `xen_pin_page`, `xen_alloc_ptpage`).
//!
//! A page-table page is an ordinary page from the allocator ([`pte_alloc_one`], [`pgd_alloc`])
//! that Xen will only accept once no writable mapping of it is left anywhere. Its aliases:
//! the direct map (lowmem, handled here with `set_memory_ro`), a kmap / kmap_atomic slot
//! (highmem, handled by the hooks [`AliasHooks`] that highmem registers), and any mapping the
//! kernel forgot — stale lazy vmap aliases above all, which only the validator (or Xen's -22)
//! reveals. [`xen_pin`] therefore: optionally purges lazy vmap aliases (`vm_unmap_aliases`,
//! what later Linux does), runs every registered alias hook, then makes the direct-map
//! aliases read-only and pins, in one multicall. [`xen_unpin`] unpins and makes the aliases
//! writable again. A refused pin is not fatal: the aliases are made writable again, the rc
//! is returned, the caller records it and cleans up.
//!
//! Address spaces ([`MmStruct`], "processes"): an L4 of their own whose kernel half (L4
//! slots 272..511, Xen's slots 256..271 excluded) is copied from the live L4 at
//! [`pgd_alloc`] time, plus user L3/L2/L1 pages allocated on demand by [`mm_map_page`].
//! While an address space is not pinned its tables are ordinary pages, written with plain
//! stores through the direct map (as Linux fills a new mm before it is pinned); once pinned,
//! every change goes through `mmu_update`. [`xen_pgd_pin`] pins the whole tree by pinning the
//! L4 after making every table read-only.

use pagetable_validator::abi::{domid::DOMID_SELF, mmu, mmuext, MulticallEntry};
use pagetable_validator::abi::{MmuUpdate, MmuextOp};
use pagetable_validator::pte::{self, ENTRIES};

use super::pgtable::{mmu_req, mmuext_frame, pin_cmd};
use super::{vmalloc, Pfn};
use crate::hypercall;
use crate::setup::Kernel;

/// What the pin path asks of an alias hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AliasOp {
    /// `pfn` is about to be pinned: make (or tear down) every alias you own read-only.
    MakeReadOnly,
    /// `pfn` was just unpinned (or its pin was refused): aliases may be writable again.
    MakeWritable,
}

/// An alias hook: returns 0 or the rc of the hypercall that failed.
pub type AliasHook = fn(&mut Kernel, Pfn, AliasOp) -> i64;

/// The extension point for aliases that are not the direct map (kmap / kmap_atomic:
/// [`kmap_alias_hook`](super::highmem::kmap_alias_hook), registered in `setup`).
/// Register with `k.pgalloc.hooks.register(f)`; hooks run in registration order.
#[derive(Clone, Copy, Default)]
pub struct AliasHooks {
    hooks: [Option<AliasHook>; 4],
}

impl AliasHooks {
    /// Adds a hook; panics if the (small, fixed) table is full.
    pub fn register(&mut self, hook: AliasHook) {
        let slot = self
            .hooks
            .iter_mut()
            .find(|h| h.is_none())
            .expect("alias_hooks: table full");
        *slot = Some(hook);
    }

    fn run(self, k: &mut Kernel, pfn: Pfn, op: AliasOp) -> i64 {
        for h in self.hooks.into_iter().flatten() {
            let rc = h(k, pfn, op);
            if rc != 0 {
                return rc;
            }
        }
        0
    }
}

/// Work counts of the pin path, for the scenarios' `COUNTS` lines.
#[derive(Clone, Copy, Debug, Default)]
pub struct PinStats {
    /// Pin attempts (one per `xen_pin` / `xen_pgd_pin`), of which refused.
    pub pins: u64,
    pub pin_failures: u64,
    pub unpins: u64,
    /// Page-table pages allocated / freed.
    pub pt_allocs: u64,
    pub pt_frees: u64,
}

/// Pin-path state (a field of [`Kernel`]).
#[derive(Default)]
pub struct PgAlloc {
    pub hooks: AliasHooks,
    /// Call `vm_unmap_aliases()` before every pin (later Linux; off = the 2007 kernel).
    pub unmap_aliases_on_pin: bool,
    pub stats: PinStats,
}

/// `pte_alloc_one` (and the other levels): a zeroed ZONE_NORMAL page for a page table, still
/// writable in the direct map (an ordinary page until pinned). `None` when out of memory.
pub fn pte_alloc_one(k: &mut Kernel) -> Option<Pfn> {
    let pfn = k.pages.alloc_page()?;
    clear_lowmem_page(k, pfn);
    k.pgalloc.stats.pt_allocs += 1;
    Some(pfn)
}

/// `pte_free`: drops the page-table page (must be unpinned and writable again).
pub fn pte_free(k: &mut Kernel, pfn: Pfn) {
    k.pgalloc.stats.pt_frees += 1;
    k.pages.put_page(pfn);
}

fn clear_lowmem_page(k: &Kernel, pfn: Pfn) {
    let va = k.directmap.page_address(pfn).expect("lowmem page");
    // SAFETY: a page we just allocated, mapped RW in the direct map, referenced by nothing.
    unsafe { core::ptr::write_bytes(va as *mut u64, 0, ENTRIES) };
}

/// Pins the page tables `tables` (`(level, pfn)`; only the last one, the root, is pinned,
/// the others must be reachable from it) the Linux way. Returns Xen's rc of the pin (or of the
/// first failing alias change); on failure every alias is writable again.
fn pin_tree(k: &mut Kernel, tables: &[(u32, Pfn)]) -> i64 {
    assert!(
        !tables.is_empty() && tables.len() < 63,
        "pin_tree: bad table count"
    );
    k.pgalloc.stats.pins += 1;
    if k.pgalloc.unmap_aliases_on_pin {
        vmalloc::vm_unmap_aliases(k);
    }
    let hooks = k.pgalloc.hooks;
    let mut rc = 0;
    for &(_, pfn) in tables {
        rc = hooks.run(k, pfn, AliasOp::MakeReadOnly);
        if rc != 0 {
            break;
        }
    }
    if rc == 0 {
        let (level, root) = tables[tables.len() - 1];
        let op = [mmuext_frame(pin_cmd(level), k.pfn_to_mfn(root))];
        let mut calls = [MulticallEntry::default(); 64];
        let mut n = 0;
        for &(_, pfn) in tables {
            if let Some(c) = k.directmap.mc_set_memory(&k.p2m, pfn, true) {
                calls[n] = c;
                n += 1;
            }
        }
        calls[n] = hypercall::mc_mmuext_op(&op);
        n += 1;
        // SAFETY: the entries only touch page-table pages we own (no Rust references into
        // them); `op` outlives the call.
        let mrc = unsafe { hypercall::multicall(&mut calls[..n]) };
        rc = core::iter::once(mrc)
            .chain(calls[..n].iter().map(|c| c.result))
            .find(|&r| r != 0)
            .unwrap_or(0);
    }
    if rc != 0 {
        k.pgalloc.stats.pin_failures += 1;
        make_writable(k, tables);
    }
    rc
}

/// Makes every alias of `tables` writable again (after unpin or a refused pin).
fn make_writable(k: &mut Kernel, tables: &[(u32, Pfn)]) -> i64 {
    let mut calls = [MulticallEntry::default(); 64];
    let mut n = 0;
    for &(_, pfn) in tables {
        if let Some(c) = k.directmap.mc_set_memory(&k.p2m, pfn, false) {
            calls[n] = c;
            n += 1;
        }
    }
    let mut rc = 0;
    if n > 0 {
        // SAFETY: only page-table pages we own change protection.
        let mrc = unsafe { hypercall::multicall(&mut calls[..n]) };
        rc = core::iter::once(mrc)
            .chain(calls[..n].iter().map(|c| c.result))
            .find(|&r| r != 0)
            .unwrap_or(0);
    }
    let hooks = k.pgalloc.hooks;
    for &(_, pfn) in tables {
        let r = hooks.run(k, pfn, AliasOp::MakeWritable);
        if rc == 0 {
            rc = r;
        }
    }
    rc
}

/// `xen_pin`: pins one page-table page of `level` (1..=4) after making every alias of it
/// read-only. Returns Xen's rc; on failure the aliases are writable again.
pub fn xen_pin(k: &mut Kernel, level: u32, pfn: Pfn) -> i64 {
    pin_tree(k, &[(level, pfn)])
}

/// `xen_unpin`: unpins and makes the aliases writable again. Returns the unpin's rc (or the
/// first failing alias change).
pub fn xen_unpin(k: &mut Kernel, pfn: Pfn) -> i64 {
    unpin_tree(k, &[(1, pfn)])
}

fn unpin_tree(k: &mut Kernel, tables: &[(u32, Pfn)]) -> i64 {
    k.pgalloc.stats.unpins += 1;
    let (_, root) = tables[tables.len() - 1];
    let op: [MmuextOp; 1] = [mmuext_frame(mmuext::UNPIN_TABLE, k.pfn_to_mfn(root))];
    // SAFETY: unpinning changes no mapping.
    let rc = unsafe { hypercall::mmuext_op(&op, None, DOMID_SELF) };
    if rc != 0 {
        return rc;
    }
    make_writable(k, tables)
}

/// Most page tables one [`MmStruct`] may own (L4 included).
pub const MM_MAX_TABLES: usize = 16;

/// An address space ("process"): its L4 and the user tables below it.
pub struct MmStruct {
    /// `(level, pfn)`; the L4 is last once the tree is complete, see [`MmStruct::tables`].
    tables: [(u32, Pfn); MM_MAX_TABLES],
    nr: usize,
    pgd: Pfn,
    pinned: bool,
}

impl MmStruct {
    /// The L4.
    pub fn pgd(&self) -> Pfn {
        self.pgd
    }

    /// Number of page-table pages (L4 included).
    pub fn nr_tables(&self) -> usize {
        self.nr + 1
    }

    /// All tables, user tables first and the L4 last.
    fn tables(&self) -> ([(u32, Pfn); MM_MAX_TABLES + 1], usize) {
        let mut t = [(0, Pfn(0)); MM_MAX_TABLES + 1];
        t[..self.nr].copy_from_slice(&self.tables[..self.nr]);
        t[self.nr] = (4, self.pgd);
        (t, self.nr + 1)
    }
}

/// First L4 slot of the kernel half the guest owns (256..=271 belong to Xen).
const KERNEL_PGD_FIRST: usize = 272;

/// `pgd_alloc`: a new address space: a zeroed L4 with the kernel half copied from the live
/// L4. Not pinned. `None` when out of memory.
pub fn pgd_alloc(k: &mut Kernel) -> Option<MmStruct> {
    let pgd = pte_alloc_one(k)?;
    let src = k.start_info.pt_base as *const u64;
    let dst = k.directmap.page_address(pgd).expect("lowmem") as *mut u64;
    for i in KERNEL_PGD_FIRST..ENTRIES {
        // SAFETY: pt_base is the live L4, mapped read-only for good; dst is our fresh page,
        // mapped RW in the direct map.
        unsafe { dst.add(i).write_volatile(src.add(i).read_volatile()) };
    }
    Some(MmStruct {
        tables: [(0, Pfn(0)); MM_MAX_TABLES],
        nr: 0,
        pgd,
        pinned: false,
    })
}

/// Writes entry `idx` of table `table` in `mm`: a plain store while unpinned, `mmu_update`
/// once pinned. Returns Xen's rc (0 for a plain store).
fn set_entry(k: &mut Kernel, mm: &MmStruct, table: Pfn, idx: usize, val: u64) -> i64 {
    if mm.pinned {
        let req: [MmuUpdate; 1] = [mmu_req(
            k.pfn_to_mfn(table),
            idx,
            val,
            mmu::NORMAL_PT_UPDATE,
        )];
        // SAFETY: user-half entries of our own address space; no kernel memory changes.
        unsafe { hypercall::mmu_update(&req, None, DOMID_SELF) }
    } else {
        let va = k.directmap.page_address(table).expect("lowmem table");
        // SAFETY: an unpinned table of ours is an ordinary page, mapped RW in the direct map.
        unsafe { (va as *mut u64).add(idx).write_volatile(val) };
        0
    }
}

fn get_entry(k: &Kernel, table: Pfn, idx: usize) -> u64 {
    let va = k.directmap.page_address(table).expect("lowmem table");
    // SAFETY: the direct map maps every lowmem page (RO or RW) for reading.
    unsafe { (va as *const u64).add(idx).read_volatile() }
}

/// Maps user virtual address `va` to `pfn` with `prot` in `mm`, allocating the L3/L2/L1 on the
/// way (`pud_alloc`, `pmd_alloc`, `pte_alloc`). Returns Xen's rc, or -12 when out of memory or
/// tables. A new table for a pinned mm is made read-only before it is hooked in.
pub fn mm_map_page(k: &mut Kernel, mm: &mut MmStruct, va: u64, pfn: Pfn, prot: u64) -> i64 {
    assert!(
        va <= pagetable_validator::pte::layout::USER_END,
        "mm_map_page: kernel va"
    );
    let mut table = mm.pgd;
    for level in (2..=4).rev() {
        let idx = pte::table_index(va, level);
        let e = get_entry(k, table, idx);
        let next = if pte::pte_present(e) {
            k.m2p
                .mfn_to_pfn(super::Mfn(pte::pte_mfn(e)))
                .expect("table in RAM")
        } else {
            if mm.nr == MM_MAX_TABLES {
                return -12;
            }
            let Some(t) = pte_alloc_one(k) else {
                return -12;
            };
            mm.tables[mm.nr] = (level - 1, t);
            mm.nr += 1;
            if mm.pinned {
                let rc = k.directmap.set_memory_ro(&k.p2m, t);
                if rc != 0 {
                    return rc;
                }
            }
            let rc = set_entry(
                k,
                mm,
                table,
                idx,
                pte::mk_pte(k.pfn_to_mfn(t).0, pte::PAGE_TABLE),
            );
            if rc != 0 {
                return rc;
            }
            t
        };
        table = next;
    }
    let val = pte::mk_pte(k.pfn_to_mfn(pfn).0, prot);
    set_entry(k, mm, table, pte::table_index(va, 1), val)
}

/// `xen_pgd_pin`: makes every table of `mm` read-only in all its aliases and pins the L4.
/// Returns Xen's rc; on failure everything is writable again and `mm` stays unpinned.
pub fn xen_pgd_pin(k: &mut Kernel, mm: &mut MmStruct) -> i64 {
    let (t, n) = mm.tables();
    let rc = pin_tree(k, &t[..n]);
    mm.pinned = rc == 0;
    rc
}

/// `xen_pgd_unpin`: unpins the L4 and makes every table writable again.
pub fn xen_pgd_unpin(k: &mut Kernel, mm: &mut MmStruct) -> i64 {
    let (t, n) = mm.tables();
    let rc = unpin_tree(k, &t[..n]);
    if rc == 0 {
        mm.pinned = false;
    }
    rc
}

/// `pgd_free` (with the user tables: `free_pgtables`): the mm must be unpinned.
pub fn pgd_free(k: &mut Kernel, mm: MmStruct) {
    assert!(!mm.pinned, "pgd_free: address space still pinned");
    let (t, n) = mm.tables();
    for &(_, pfn) in &t[..n] {
        pte_free(k, pfn);
    }
}
