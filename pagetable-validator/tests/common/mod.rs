//! Shared test helpers: building address spaces in plain memory.
#![allow(dead_code)]

use pagetable_validator::pte::{pte_present, table_index, PAGE_TABLE};
use pagetable_validator::{FrameInfo, GuestFrames, Mfn, Validator, VecFrames};

/// Guest memory plus a bump allocator for frames.
pub struct Space {
    pub mem: VecFrames,
    next: Mfn,
}

impl Space {
    /// `nr` frames; allocation starts at `first`.
    pub fn new(nr: u64, first: Mfn) -> Self {
        Space {
            mem: VecFrames::new(nr),
            next: first,
        }
    }

    pub fn alloc(&mut self) -> Mfn {
        let m = self.next;
        self.next = m.add(1);
        m
    }

    /// Raw (unvalidated) write of the mapping `va -> mfn` into the tree under
    /// `l4`, creating intermediate tables with `PAGE_TABLE` flags. Returns the L1
    /// and slot. Only for tables not validated yet.
    pub fn map(&mut self, l4: Mfn, va: u64, mfn: Mfn, flags: u64) -> (Mfn, usize) {
        let mut table = l4;
        for level in [4u32, 3, 2] {
            let idx = table_index(va, level);
            let e = self.mem.read_entry(table, idx);
            table = if pte_present(e) {
                Mfn::of_pte(e)
            } else {
                let t = self.alloc();
                self.mem.write_entry(table, idx, t.pte(PAGE_TABLE));
                t
            };
        }
        let slot = table_index(va, 1);
        self.mem.write_entry(table, slot, mfn.pte(flags));
        (table, slot)
    }

    /// The table at `level` (3, 2 or 1) on the path of `va` under `l4`.
    pub fn table_of(&self, l4: Mfn, va: u64, level: u32) -> Mfn {
        let mut table = l4;
        for lv in (level + 1..=4).rev() {
            table = Mfn::of_pte(self.mem.read_entry(table, table_index(va, lv)));
        }
        table
    }
}

/// Machine address of entry `slot` of `table`, for `mmu_update`.
pub fn pte_ptr(table: Mfn, slot: usize) -> u64 {
    table.maddr() | (slot as u64 * 8)
}

pub fn info(v: &Validator, m: Mfn) -> FrameInfo {
    v.frame_info(m).expect("mfn in range")
}

/// Runs the oracle and panics with its report.
pub fn check(v: &Validator, mem: &VecFrames) {
    if let Err(e) = v.check_invariants(mem) {
        panic!("invariants broken:\n{e}");
    }
}
