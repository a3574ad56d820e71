//! Unit tests of `multicall` on the fake domain (no KVM): results written back, nesting, an
//! unreadable entry, preemption between entries and the rewrite of an entry whose own call
//! was preempted.

use crate::hypercall::testenv::{ctx, hypervisor, va, L1S, L4, NR};
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

fn ro(f: u64) -> u64 {
    mk_pte(f, _PAGE_PRESENT | _PAGE_ACCESSED)
}

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

/// Runs `multicall(calls, nr)` as the stub does, re-entering its continuations; returns the
/// final rc and the continuations seen.
fn run_multicall(
    hv: &mut crate::hypercall::Hypervisor,
    calls: u64,
    nr: u64,
) -> (i64, Vec<[u64; 6]>) {
    let mut a = [calls, nr, 0, 0, 0, 0];
    let mut seen = Vec::new();
    for _ in 0..100 {
        let mut c = ctx();
        let rc = hv.hypercall(&mut c, hc::MULTICALL, a);
        match c.continuation {
            Some(k) => {
                assert_eq!((rc, k.nr), (hc::MULTICALL as i64, hc::MULTICALL));
                seen.push(k.args);
                a = k.args;
            }
            None => return (rc, seen),
        }
    }
    panic!("still continuing after 100 exits")
}

#[test]
fn every_entry_runs_and_gets_its_result_nested_multicalls_are_refused() {
    let mut hv = hypervisor();
    let self_ = u64::from(domid::DOMID_SELF);
    hv.t_write(ARGS, 0, &mmuext(mmuext::TLB_FLUSH_LOCAL, 0));
    hv.t_write(ARGS, 24, &mmuext(mmuext::PIN_L1_TABLE, 0x130)); // mapped writable: -EINVAL
    let mut calls = Vec::new();
    calls.extend_from_slice(&entry(hc::MMUEXT_OP, [va(ARGS, 24), 1, 0, self_, 0, 0]));
    calls.extend_from_slice(&entry(hc::MULTICALL, [va(ARGS, 0x200), 1, 0, 0, 0, 0]));
    calls.extend_from_slice(&entry(hc::MMUEXT_OP, [va(ARGS, 0), 1, 0, self_, 0, 0]));
    calls.extend_from_slice(&entry(99, [0; 6]));
    hv.t_write(ARGS, 0x200, &calls);
    assert_eq!(run_multicall(&mut hv, va(ARGS, 0x200), 4), (0, vec![]));
    let result = |k: u64| hv.t_u64(ARGS, 0x200 + k * 64 + 8) as i64;
    assert_eq!(
        [result(0), result(1), result(2), result(3)],
        [-22, -22, 0, -38]
    );
    assert_eq!(hv.stats.multicall_entries, 4);
    // An entry the guest cannot read ends the batch with -EFAULT.
    assert_eq!(run_multicall(&mut hv, va(NR + 3, 0), 1).0, -14);
}

#[test]
fn a_long_multicall_continues_between_entries() {
    let mut hv = hypervisor();
    let self_ = u64::from(domid::DOMID_SELF);
    hv.t_write(ARGS, 0, &mmuext(mmuext::TLB_FLUSH_LOCAL, 0));
    let n = 300u64; // 2 batch elements each: the budget runs out within the list
    let one = entry(hc::MMUEXT_OP, [va(ARGS, 0), 1, 0, self_, 0, 0]);
    let calls: Vec<u8> = (0..n).flat_map(|_| one).collect();
    let base = va(0x150, 0); // frames 0x150.. (300 * 64 bytes)
    hv.t_write(0x150, 0, &calls);
    let (rc, seen) = run_multicall(&mut hv, base, n);
    assert_eq!(rc, 0);
    assert!(!seen.is_empty(), "{n} entries fit in one exit");
    for k in &seen {
        // ("hi"): the first entry not run, the number left.
        let i = (k[0] - base) / 64;
        assert!(i > 0 && k[1] == n - i, "{k:x?}");
    }
    assert_eq!(hv.stats.multicall_entries, n);
    assert!((0..n).all(|k| hv.t_u64(0x150, k * 64 + 8) == 0));
}

#[test]
fn an_entry_whose_call_was_preempted_is_rewritten_and_resumed() {
    let mut hv = hypervisor();
    let self_ = u64::from(domid::DOMID_SELF);
    // One mmu_update of 600 requests (frames 0x160.., read-only entries for frames 512..).
    let n = 600u64;
    let mut reqs = Vec::new();
    for s in 0..n.min(512) {
        reqs.extend_from_slice(&(L1S[1] * PAGE_SIZE + s * 8).to_le_bytes());
        reqs.extend_from_slice(&ro(512 + s).to_le_bytes());
    }
    for s in 512..n {
        // The rest rewrite the first entries again (still valid).
        reqs.extend_from_slice(&(L1S[1] * PAGE_SIZE + (s - 512) * 8).to_le_bytes());
        reqs.extend_from_slice(&ro(512 + s - 512).to_le_bytes());
    }
    hv.t_write(0x160, 0, &reqs);
    let done = va(ARGS, 0x800);
    let calls = entry(hc::MMU_UPDATE, [va(0x160, 0), n, done, self_, 0, 0]);
    hv.t_write(ARGS, 0x200, &calls);
    let mut c = ctx();
    assert_eq!(
        hv.hypercall(&mut c, hc::MULTICALL, [va(ARGS, 0x200), 1, 0, 0, 0, 0]),
        hc::MULTICALL as i64
    );
    let k = c.continuation.expect("the multicall continues");
    assert_eq!(
        &k.args[..2],
        &[va(ARGS, 0x200), 1],
        "at the same entry, one left"
    );
    // The entry now holds the sub-call's continuation: result = its number, args = its own.
    let word = |hv: &crate::hypercall::Hypervisor, i: u64| hv.t_u64(ARGS, 0x200 + i * 8);
    assert_eq!(word(&hv, 0), hc::MMU_UPDATE);
    assert_eq!(word(&hv, 1), hc::MMU_UPDATE);
    let served = u64::from(crate::hypercall::PREEMPT_BUDGET) - 1; // the entry itself is one
    assert_eq!(word(&hv, 2), va(0x160, 0) + served * 16);
    assert_eq!(
        word(&hv, 3),
        (n - served) | pagetable_validator::abi::mmu::UPDATE_PREEMPTED
    );
    assert_eq!((word(&hv, 4), word(&hv, 5)), (done, self_));
    assert_eq!(u64::from(hv.t_u32(ARGS, 0x800)), served);
    // Re-entered, the multicall resumes the sub-call where it stopped.
    assert_eq!(run_multicall(&mut hv, k.args[0], k.args[1]).0, 0);
    assert_eq!(word(&hv, 1), 0, "the entry's final result");
    assert_eq!(u64::from(hv.t_u32(ARGS, 0x800)), n);
    assert_eq!(hv.stats.pte_updates, n);
    assert_eq!(hv.stats.multicall_entries, 1);
}
