//! Unit tests of mmu_update / mmuext_op batches on the fake domain (no KVM): continuations,
//! `done` accounting, a failing element.

use crate::hypercall::testenv::{ctx, hypervisor, va, L1S, NR};
use crate::hypercall::{Hypervisor, PREEMPT_BUDGET};
use pagetable_validator::abi::mmu::UPDATE_PREEMPTED;
use pagetable_validator::abi::{domid, hypercall as hc, mmu, mmuext};
use pagetable_validator::pte::{
    mk_pte, pte_mfn, _PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW, PAGE_SIZE,
};

/// Request buffers (frames 0x100.., mapped contiguously) and the `done` word.
const REQS: u64 = 0x100;
const DONE: u64 = 0x110;
const SELF: u64 = domid::DOMID_SELF as u64;

/// `n` mmu_update requests making the second L1's entries for frames 512.. read-only; the
/// `bad`-th (if any) maps a frame outside the domain instead.
fn requests(hv: &Hypervisor, n: u64, bad: Option<u64>) {
    let mut b = Vec::new();
    for s in 0..n {
        let frame = if Some(s) == bad { NR + 7 } else { 512 + s };
        b.extend_from_slice(&(L1S[1] * PAGE_SIZE + s * 8).to_le_bytes());
        b.extend_from_slice(&mk_pte(frame, _PAGE_PRESENT | _PAGE_ACCESSED).to_le_bytes());
    }
    hv.t_write(REQS, 0, &b);
}

/// Runs hypercall `nr` as the guest's stub does, re-entering its continuations; returns the
/// final rc and the number of exits.
fn run(hv: &mut Hypervisor, nr: u64, mut a: [u64; 6]) -> (i64, u32) {
    for exits in 1..100 {
        let mut c = ctx();
        let rc = hv.hypercall(&mut c, nr, a);
        match c.continuation {
            Some(k) => {
                assert_eq!(rc, nr as i64, "a continuation returns the hypercall number");
                assert_eq!(k.nr, nr);
                a = k.args;
            }
            None => return (rc, exits),
        }
    }
    panic!("still continuing after 100 exits")
}

#[test]
fn a_long_mmu_update_continues_and_counts_done_across_exits() {
    let mut hv = hypervisor();
    let n = 2 * u64::from(PREEMPT_BUDGET) + 88;
    requests(&hv, n, None);
    hv.t_write(DONE, 0, &0xdead_beefu32.to_le_bytes());
    let a = [va(REQS, 0), n, va(DONE, 0), SELF, 0, 0];
    // The first exit: PREEMPT_BUDGET requests, then Xen's continuation ("hihi").
    let mut c = ctx();
    assert_eq!(
        hv.hypercall(&mut c, hc::MMU_UPDATE, a),
        hc::MMU_UPDATE as i64
    );
    let k = c.continuation.expect("preempted");
    let served = u64::from(PREEMPT_BUDGET);
    assert_eq!(k.args[0], va(REQS, 0) + served * 16);
    assert_eq!(k.args[1], (n - served) | UPDATE_PREEMPTED);
    assert_eq!(k.args[2], va(DONE, 0));
    assert_eq!(k.args[3], SELF);
    assert_eq!(u64::from(hv.t_u32(DONE, 0)), served);
    // Re-entered: `done` is read back and goes on counting.
    assert_eq!(run(&mut hv, hc::MMU_UPDATE, k.args), (0, 2));
    assert_eq!(u64::from(hv.t_u32(DONE, 0)), n);
    assert_eq!(hv.stats.pte_updates, n);
    assert_eq!(hv.stats.continuations, 2);
    // Every entry made read-only (in Xen's adjusted form, the frame unchanged).
    for s in 0..n {
        let e = hv.t_u64(L1S[1], s * 8);
        assert_eq!((pte_mfn(e), e & _PAGE_RW), (512 + s, 0), "entry {s}");
    }
    assert_eq!(hv.validator.check_invariants(&hv.ram), Ok(()));
}

#[test]
fn a_failing_request_stops_the_batch_and_done_counts_the_ones_before() {
    let mut hv = hypervisor();
    requests(&hv, 10, Some(6));
    let a = [va(REQS, 0), 10, va(DONE, 0), SELF, 0, 0];
    let (rc, exits) = run(&mut hv, hc::MMU_UPDATE, a);
    assert!(rc < 0, "{rc}");
    assert_eq!(exits, 1);
    assert_eq!(hv.t_u32(DONE, 0), 6);
    assert_eq!(hv.stats.pte_updates, 6);
    // The ones before the failing one were applied, the ones after it not.
    assert_eq!(hv.t_u64(L1S[1], 5 * 8) & _PAGE_RW, 0);
    assert_ne!(hv.t_u64(L1S[1], 7 * 8) & _PAGE_RW, 0);
}

#[test]
fn a_finished_continuation_returns_foreigndom_and_a_null_done_is_not_written() {
    let mut hv = hypervisor();
    // count == MMU_UPDATE_PREEMPTED with a NULL list: Xen's "result in foreigndom".
    let a = [0, UPDATE_PREEMPTED, 0, (-22i32) as u32 as u64, 0, 0];
    assert_eq!(hv.hypercall(&mut ctx(), hc::MMU_UPDATE, a), -22);
    requests(&hv, 3, None);
    let a = [va(REQS, 0), 3, 0, SELF, 0, 0];
    assert_eq!(run(&mut hv, hc::MMU_UPDATE, a), (0, 1));
    assert_eq!(hv.stats.pte_updates, 3);
}

#[test]
fn mmuext_op_counts_done_up_to_the_failing_op() {
    let mut hv = hypervisor();
    let op = |cmd: u32, arg1: u64| {
        let mut b = [0u8; 24];
        b[..4].copy_from_slice(&cmd.to_le_bytes());
        b[8..16].copy_from_slice(&arg1.to_le_bytes());
        b
    };
    // Two flushes, then a pin of a frame the tables map writable (refused), then a flush.
    let mut b = Vec::new();
    b.extend_from_slice(&op(mmuext::TLB_FLUSH_LOCAL, 0));
    b.extend_from_slice(&op(mmuext::INVLPG_LOCAL, va(0x200, 0)));
    b.extend_from_slice(&op(mmuext::PIN_L1_TABLE, 0x200));
    b.extend_from_slice(&op(mmuext::TLB_FLUSH_LOCAL, 0));
    hv.t_write(REQS, 0, &b);
    let a = [va(REQS, 0), 4, va(DONE, 0), SELF, 0, 0];
    let (rc, _) = run(&mut hv, hc::MMUEXT_OP, a);
    assert_eq!(rc, -22, "pinning a frame mapped writable is -EINVAL");
    assert_eq!(hv.t_u32(DONE, 0), 2);
    assert_eq!(hv.stats.flush_requests, 2);
    assert_eq!(hv.stats.pins, 0);
}

#[test]
fn machphys_update_changes_the_m2p_the_guest_reads() {
    let mut hv = hypervisor();
    let mfn = 600u64;
    let m2p = |hv: &Hypervisor| hv.ram.read_u64_phys(hv.xen.m2p_gpa(mfn)).unwrap();
    assert_eq!(m2p(&hv), mfn, "identity M2P at the start");
    let mut b = Vec::new();
    b.extend_from_slice(&((mfn << 12) | mmu::MACHPHYS_UPDATE).to_le_bytes());
    b.extend_from_slice(&0x1234u64.to_le_bytes());
    hv.t_write(REQS, 0, &b);
    let a = [va(REQS, 0), 1, va(DONE, 0), SELF, 0, 0];
    assert_eq!(run(&mut hv, hc::MMU_UPDATE, a), (0, 1));
    assert_eq!(m2p(&hv), 0x1234);
    // Refused (an mfn outside the domain): nothing written.
    let mut b = Vec::new();
    b.extend_from_slice(&(((NR + 3) << 12) | mmu::MACHPHYS_UPDATE).to_le_bytes());
    b.extend_from_slice(&7u64.to_le_bytes());
    hv.t_write(REQS, 0, &b);
    assert_eq!(run(&mut hv, hc::MMU_UPDATE, a).0, -22);
    assert_eq!(
        hv.ram.read_u64_phys(hv.xen.m2p_gpa(NR + 3)).unwrap(),
        u64::MAX
    );
}

/// Under audit a validated table may keep a (tolerated) writable mapping; a hypercall's
/// result written there must still be -EFAULT, never a store into the table.
#[test]
fn results_never_land_in_a_tolerated_writable_pagetable() {
    use crate::hypercall::testenv::hypervisor_with;
    use pagetable_validator::abi::vcpuop::VCPUOP_GET_RUNSTATE_INFO;
    let mut hv = hypervisor_with(pagetable_validator::Policy::Audit);
    // The second L1's slot 0 (the VA of frame 512) now maps the first L1, writable.
    let mut b = Vec::new();
    b.extend_from_slice(&(L1S[1] * PAGE_SIZE).to_le_bytes());
    b.extend_from_slice(&mk_pte(L1S[0], _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED).to_le_bytes());
    hv.t_write(REQS, 0, &b);
    let a = [va(REQS, 0), 1, va(DONE, 0), SELF, 0, 0];
    assert_eq!(
        run(&mut hv, hc::MMU_UPDATE, a),
        (0, 1),
        "audit tolerates it"
    );
    let table: [u8; 64] = hv.t_read(L1S[0], 0);
    let rc = run(
        &mut hv,
        hc::VCPU_OP,
        [VCPUOP_GET_RUNSTATE_INFO, 0, va(512, 0), 0, 0, 0],
    )
    .0;
    assert_eq!(rc, -14);
    assert_eq!(hv.t_read::<64>(L1S[0], 0), table, "the table is unchanged");
}
