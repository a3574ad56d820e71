//! Unit tests of `multicall` on the fake domain (no KVM).

use crate::hypercall::testenv::{ctx, hypervisor, va, L1S, L4};
use pagetable_validator::abi::{domid, hypercall as hc, mmuext, sched, vcpuop};
use pagetable_validator::pte::{
    mk_pte, pte_mfn, _PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW, PAGE_SIZE,
};

/// The second address space: L4 → L3 → L2 → L1 in these frames.
const B4: u64 = 0x110;
const B3: u64 = 0x111;
const B2: u64 = 0x112;
const B1: u64 = 0x113;
/// The runstate area's page: frame `OLD` through the initial tables, `NEW` through B's.
const OLD: u64 = 0x150;
const NEW: u64 = 0x120;
/// Hypercall argument buffers.
const ARGS: u64 = 0x140;

fn mmuext(cmd: u32, arg1: u64) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[0..4].copy_from_slice(&cmd.to_le_bytes());
    b[8..16].copy_from_slice(&arg1.to_le_bytes());
    b
}

fn entry(op: u64, args: [u64; 6]) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[0..8].copy_from_slice(&op.to_le_bytes());
    for (k, a) in args.iter().enumerate() {
        b[16 + k * 8..24 + k * 8].copy_from_slice(&a.to_le_bytes());
    }
    b
}

/// A multicall that switches to new tables, unpins the old ones and pins a frame they still map
/// writable as an L1, then blocks: the block's runstate update must go through the new tables
/// (Xen's `write_ptbase` at NEW_BASEPTR), not the vCPU's CR3 from before the multicall, which
/// would store into the freshly validated L1 (fuzz seed 18's `refs != recomputed`).
#[test]
fn block_after_new_baseptr_writes_through_the_new_tables() {
    let mut hv = hypervisor();
    let ro = |f: u64| mk_pte(f, _PAGE_PRESENT | _PAGE_ACCESSED);
    let rw = |f: u64| mk_pte(f, _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_RW);
    // B: a copy of the initial L4 (Xen slots included) whose kernel half maps frames 0-511
    // like L1S[0], except the runstate page, which is NEW instead of OLD.
    let l4: [u8; 4096] = hv.t_read(L4, 0);
    hv.t_write(B4, 0, &l4);
    hv.t_write(B4, 511 * 8, &rw(B3).to_le_bytes());
    hv.t_write(B3, 510 * 8, &rw(B2).to_le_bytes());
    hv.t_write(B2, 0, &rw(B1).to_le_bytes());
    let l1: [u8; 4096] = hv.t_read(L1S[0], 0);
    hv.t_write(B1, 0, &l1);
    for f in B4..=B1 {
        hv.t_write(B1, f * 8, &ro(f).to_le_bytes());
    }
    hv.t_write(B1, OLD * 8, &rw(NEW).to_le_bytes());
    // The initial tables map B's frames read-only, so B can be pinned.
    let mut req = Vec::new();
    for f in B4..=B1 {
        req.extend_from_slice(&(L1S[0] * PAGE_SIZE + f * 8).to_le_bytes());
        req.extend_from_slice(&ro(f).to_le_bytes());
    }
    hv.t_write(ARGS, 0, &req);
    let self_ = u64::from(domid::DOMID_SELF);
    let args = [va(ARGS, 0), 4, 0, self_, 0, 0];
    assert_eq!(hv.hypercall(&mut ctx(), hc::MMU_UPDATE, args), 0);
    hv.t_write(ARGS, 0, &mmuext(mmuext::PIN_L4_TABLE, B4));
    let args = [va(ARGS, 0), 1, 0, self_, 0, 0];
    assert_eq!(hv.hypercall(&mut ctx(), hc::MMUEXT_OP, args), 0);
    // The runstate area, at OLD's kernel address.
    hv.t_write(ARGS, 0, &va(OLD, 0).to_le_bytes());
    let args = [
        vcpuop::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
        0,
        va(ARGS, 0),
        0,
        0,
        0,
    ];
    assert_eq!(hv.hypercall(&mut ctx(), hc::VCPU_OP, args), 0);
    // OLD becomes an L1 with one read-only entry (of a frame only the tables map).
    hv.t_write(OLD, 0, &[0u8; 4096]);
    hv.t_write(OLD, 0, &ro(0x130).to_le_bytes());

    let mut ops = Vec::new();
    ops.extend_from_slice(&mmuext(mmuext::NEW_BASEPTR, B4));
    ops.extend_from_slice(&mmuext(mmuext::UNPIN_TABLE, L4));
    ops.extend_from_slice(&mmuext(mmuext::PIN_L1_TABLE, OLD));
    hv.t_write(ARGS, 0x100, &ops);
    let mut calls = Vec::new();
    calls.extend_from_slice(&entry(hc::MMUEXT_OP, [va(ARGS, 0x100), 3, 0, self_, 0, 0]));
    calls.extend_from_slice(&entry(
        hc::SCHED_OP_COMPAT,
        [sched::SCHEDOP_BLOCK, 0, 0, 0, 0, 0],
    ));
    hv.t_write(ARGS, 0x200, &calls);
    let mut c = ctx();
    assert_eq!(
        hv.hypercall(&mut c, hc::MULTICALL, [va(ARGS, 0x200), 2, 0, 0, 0, 0]),
        0
    );
    assert_eq!(c.cr3, B4 << 12);
    assert_eq!(hv.t_u64(ARGS, 0x200 + 8), 0, "mmuext_op's result");
    assert_eq!(hv.t_u64(ARGS, 0x240 + 8), 0, "sched_op_compat's result");
    assert!(hv.is_blocked());
    assert_eq!(hv.validator.check_invariants(&hv.ram), Ok(()));
    // (Validation adjusted the entry, as Xen's adjust_guest_l1e does.)
    assert_eq!(pte_mfn(hv.t_u64(OLD, 0)), 0x130, "the new L1 is untouched");
    assert_eq!(
        hv.t_u32(NEW, 0),
        vcpuop::RUNSTATE_BLOCKED,
        "the runstate went through the new tables"
    );
}
