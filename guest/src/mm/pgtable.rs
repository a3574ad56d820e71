//! Page-table operations through the hypervisor (Linux: arch/x86/xen/mmu_pv.c).
//!
//! A PV guest never writes a live page table directly: entries change through `mmu_update`
//! (by machine address of the entry) or `update_va_mapping` (by virtual address), and frames
//! become or stop being page tables through pin/unpin (`mmuext_op`). Xen validates all of it.

use pagetable_validator::abi::{domid::DOMID_SELF, mmu, mmuext, MmuUpdate, MmuextOp};
use pagetable_validator::pte::{self, layout::KERNEL_BASE, ENTRIES};

use super::memblock::PfnRange;
use super::p2m::P2m;
use super::{boot_va, Mfn, Pfn};
use crate::hypercall;

/// The `MMUEXT_PIN_Ln_TABLE` command for a level 1..=4.
pub fn pin_cmd(level: u32) -> u32 {
    match level {
        1 => mmuext::PIN_L1_TABLE,
        2 => mmuext::PIN_L2_TABLE,
        3 => mmuext::PIN_L3_TABLE,
        4 => mmuext::PIN_L4_TABLE,
        _ => panic!("pin_cmd: no page-table level {level}"),
    }
}

/// An `mmuext_op` naming one frame (pin, unpin).
pub fn mmuext_frame(cmd: u32, mfn: Mfn) -> MmuextOp {
    MmuextOp {
        cmd,
        _pad: 0,
        arg1: mfn.0,
        arg2: 0,
    }
}

/// Pins `mfn` as a level-`level` page table. Returns Xen's rc.
pub fn pin_table(level: u32, mfn: Mfn) -> i64 {
    let op = [mmuext_frame(pin_cmd(level), mfn)];
    // SAFETY: pinning only adds a type reference; it changes no mapping.
    unsafe { hypercall::mmuext_op(&op, None, DOMID_SELF) }
}

/// Unpins `mfn`. Returns Xen's rc.
pub fn unpin_table(mfn: Mfn) -> i64 {
    let op = [mmuext_frame(mmuext::UNPIN_TABLE, mfn)];
    // SAFETY: unpinning drops a type reference; it changes no mapping.
    unsafe { hypercall::mmuext_op(&op, None, DOMID_SELF) }
}

/// Machine address of entry `idx` of the table in frame `table`.
pub fn entry_maddr(table: Mfn, idx: usize) -> u64 {
    assert!(idx < ENTRIES, "entry index {idx} out of range");
    table.maddr() + (idx as u64) * 8
}

/// An `mmu_update` request writing `val` into entry `idx` of `table` with command `cmd`
/// (`MMU_NORMAL_PT_UPDATE` or `MMU_PT_UPDATE_PRESERVE_AD`).
pub fn mmu_req(table: Mfn, idx: usize, val: u64, cmd: u64) -> MmuUpdate {
    MmuUpdate {
        ptr: entry_maddr(table, idx) | (cmd & mmu::CMD_MASK),
        val,
    }
}

/// Writes one entry of a page table (or of a plain page) with `mmu_update`. Returns Xen's rc.
///
/// # Safety
/// The change must not unmap or write-protect memory that live Rust references use.
pub unsafe fn set_entry(table: Mfn, idx: usize, val: u64, cmd: u64) -> i64 {
    let req = [mmu_req(table, idx, val, cmd)];
    // SAFETY: the caller vouches for the effect of the new entry.
    unsafe { hypercall::mmu_update(&req, None, DOMID_SELF) }
}

/// Reads entry `idx` of a table frame through a read-only-or-better virtual mapping.
///
/// # Safety
/// `table_va` must map a whole page-table frame readable for the duration of the call.
pub unsafe fn read_entry(table_va: u64, idx: usize) -> u64 {
    assert!(idx < ENTRIES);
    // SAFETY: per the caller; volatile because the MMU may set accessed/dirty bits under us.
    unsafe { (table_va as *const u64).add(idx).read_volatile() }
}

/// Walks the bootstrap page tables (`pt_base`, frames `pt`) and returns the end (exclusive) of
/// the bootstrap region: the pfns mapped 1:1 at `KERNEL_BASE + pfn * 4096`.
///
/// Real Xen decides how far that mapping reaches (at least 512 KiB past the boot stack,
/// rounded to 4 MiB); any pfn mapped there is mapped read-write, which matters to anyone who
/// wants to pin it. So we read the truth from the tables instead of predicting it. Also checks
/// the ABI promises the rest of the kernel relies on, and panics with a clear message if the
/// domain builder broke them.
pub fn probe_bootstrap_end(p2m: &P2m, pt_base: u64, pt: PfnRange) -> Pfn {
    // Page-table frames are only reachable through their own (read-only) bootstrap mapping.
    let table_va = |entry: u64, what: &str| -> u64 {
        if !pte::pte_present(entry) {
            panic!("bootstrap walk: no {what} for KERNEL_BASE");
        }
        if entry & pte::_PAGE_PSE != 0 {
            panic!("bootstrap walk: {what} entry {entry:#x} is a superpage");
        }
        let mfn = Mfn(pte::pte_mfn(entry));
        match p2m.find_in(mfn, pt.start.0..pt.end.0) {
            Some(pfn) => boot_va(pfn),
            None => panic!(
                "bootstrap walk: {what} mfn {:#x} is not among the pt_base frames",
                mfn.0
            ),
        }
    };
    let (l4i, l3i) = (
        pte::table_index(KERNEL_BASE, 4),
        pte::table_index(KERNEL_BASE, 3),
    );
    // SAFETY: pt_base and every frame table_va returns are bootstrap page-table frames, which
    // the builder maps read-only and which stay mapped.
    unsafe {
        let l3 = table_va(read_entry(pt_base, l4i), "L3");
        let l2 = table_va(read_entry(l3, l3i), "L2");
        let mut end: Option<u64> = None;
        for i in pte::table_index(KERNEL_BASE, 2)..ENTRIES {
            let e2 = read_entry(l2, i);
            let base_pfn = (i - pte::table_index(KERNEL_BASE, 2)) as u64 * ENTRIES as u64;
            if !pte::pte_present(e2) {
                end.get_or_insert(base_pfn);
                continue;
            }
            let l1 = table_va(e2, "L1");
            for j in 0..ENTRIES {
                let e1 = read_entry(l1, j);
                let pfn = Pfn(base_pfn + j as u64);
                match (pte::pte_present(e1), end) {
                    (false, None) => end = Some(pfn.0),
                    (false, Some(_)) => {}
                    (true, Some(e)) => panic!(
                        "bootstrap walk: pfn {:#x} mapped after a hole at pfn {e:#x}",
                        pfn.0
                    ),
                    (true, None) => {
                        if p2m.try_pfn_to_mfn(pfn) != Some(Mfn(pte::pte_mfn(e1))) {
                            panic!(
                                "bootstrap walk: KERNEL_BASE + pfn {:#x} does not map that pfn",
                                pfn.0
                            );
                        }
                    }
                }
            }
        }
        Pfn(end.unwrap_or(((ENTRIES - pte::table_index(KERNEL_BASE, 2)) * ENTRIES) as u64))
    }
}
