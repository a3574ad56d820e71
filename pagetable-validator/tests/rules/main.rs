//! One test per Xen rule the validator implements. Expected values are Xen's
//! documented behaviour (arch/x86/mm.c), not read back from the validator.
//!
//! `entries`: what a table entry may hold; `refcounts`: types, pins and references;
//! `ops`: the hypercall commands (mmu_update, update_va_mapping, mmuext).

#[path = "../common/mod.rs"]
mod common;

use common::{check, info, pte_ptr, Space};
use pagetable_validator::abi::MmuUpdate;
use pagetable_validator::pte::*;
use pagetable_validator::{
    GuestFrames, Mfn, PageType, Policy, Rules, Validator, VecFrames, _PAGE_GUEST_KERNEL,
    L1_DISALLOW_IO_PRIV,
};

const NR: u64 = 256;
const KVA: u64 = 0xffff_ffff_8000_0000;
const P: u64 = _PAGE_PRESENT;
const RW: u64 = _PAGE_RW;

fn v() -> Validator {
    Validator::new(NR, Policy::Enforce)
}

fn log(v: &mut Validator) -> String {
    v.drain_events()
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn errno<T>(r: Result<T, pagetable_validator::XenError>) -> i64 {
    r.err().map_or(0, |e| e.errno())
}

/// A pinned, current address space mapping data frames 200.. RO at KVA.
fn kernel_space() -> (Space, Validator, Mfn) {
    let mut s = Space::new(NR, Mfn(1));
    let l4 = s.alloc();
    for i in 0..4 {
        s.map(l4, KVA + i * PAGE_SIZE, Mfn(200 + i), PAGE_KERNEL_RO);
    }
    let mut v = v();
    v.register_initial(&mut s.mem, l4).unwrap();
    check(&v, &s.mem);
    v.drain_events();
    (s, v, l4)
}

fn mmu(v: &mut Validator, mem: &mut VecFrames, table: Mfn, slot: usize, val: u64) -> i64 {
    errno(v.mmu_update(
        mem,
        MmuUpdate {
            ptr: pte_ptr(table, slot),
            val,
        },
    ))
}

mod entries;
mod ops;
mod refcounts;
mod segdesc;
