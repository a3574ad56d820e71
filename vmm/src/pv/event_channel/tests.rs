use super::test_support::{va, T};
use super::*;
use pagetable_validator::abi::hypercall::{EVENT_CHANNEL_OP, EVENT_CHANNEL_OP_COMPAT};
use pagetable_validator::abi::{domid, shinfo};

const ARG: u64 = 40; // frame of the argument structures
const SELF: u16 = domid::DOMID_SELF;

fn op(t: &mut T, cmd: u64, bytes: &[u8]) -> (i64, Vec<u8>) {
    t.write(ARG, 0, bytes);
    let rc = t.call(EVENT_CHANNEL_OP, [cmd, va(ARG), 0, 0, 0, 0]);
    let mut out = vec![0u8; bytes.len()];
    t.hv.ram.read_phys(ARG * 4096, &mut out);
    (rc, out)
}

fn w32(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn alloc_unbound(t: &mut T, dom: u16, remote: u16) -> (i64, u32) {
    let b = EvtchnAllocUnbound {
        dom,
        remote_dom: remote,
        port: 0,
    };
    let (rc, out) = op(t, EVTCHNOP_ALLOC_UNBOUND, b.as_slice());
    (rc, member::<EvtchnAllocUnbound>(&out).port)
}

fn status(t: &mut T, port: u32) -> (i64, EvtchnStatus) {
    let b = EvtchnStatus {
        dom: SELF,
        port,
        ..Default::default()
    };
    let (rc, out) = op(t, EVTCHNOP_STATUS, b.as_slice());
    (rc, member(&out))
}

/// `u.interdomain` of a status reply (`u.unbound.dom` is its `dom`).
fn interdomain(st: &EvtchnStatus) -> EvtchnStatusInterdomain {
    member(&st.u)
}

fn simple(t: &mut T, cmd: u64, port: u32) -> i64 {
    op(t, cmd, &port.to_le_bytes()).0
}

fn bind_ipi(t: &mut T) -> u32 {
    let (rc, out) = op(t, EVTCHNOP_BIND_IPI, &w32(&[0, 0]));
    assert_eq!(rc, 0);
    member::<EvtchnBindIpi>(&out).port
}

fn si(t: &T) -> u64 {
    t.hv.xen.shared_info_mfn() << 12
}

fn pending_2l(t: &T, port: u32) -> bool {
    t.hv.test_bit(si(t) + shinfo::EVTCHN_PENDING, port)
}

fn upcall(t: &T) -> u8 {
    t.byte(t.hv.vcpu.pv.vcpu_info_gpa)
}

fn clear_upcall(t: &mut T) {
    let vi = t.hv.vcpu.pv.vcpu_info_gpa;
    t.hv.ram.write_phys(vi, &[0]);
    t.hv.ram.write_u64_phys(vi + shinfo::VI_PENDING_SEL, 0);
}

#[test]
fn xtf_domid_probe() {
    // XTF's evtchn_get_domid: alloc_unbound(SELF, SELF), status, close.
    let mut t = T::new();
    let (rc, port) = alloc_unbound(&mut t, SELF, SELF);
    assert_eq!((rc, port), (0, 1), "port 0 is reserved, 1 is first");
    let (rc, st) = status(&mut t, port);
    assert_eq!(rc, 0);
    assert_eq!(st.status, EVTCHNSTAT_UNBOUND);
    assert_eq!(
        interdomain(&st).dom,
        0,
        "remote DOMID_SELF is stored as our domid 0"
    );
    assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, port), 0);
    assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, port), -22);
    let (rc, st) = status(&mut t, port);
    assert_eq!((rc, st.status), (0, EVTCHNSTAT_CLOSED));
    // Port 0 is ECS_RESERVED: closed in status, -EINVAL to close.
    assert_eq!(status(&mut t, 0).0, 0);
    assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, 0), -22);
    // Other domains: -ESRCH; our id 0 is accepted as ourselves.
    assert_eq!(alloc_unbound(&mut t, 1, SELF).0, -3);
    assert_eq!(alloc_unbound(&mut t, 0, 7), (0, 1));
    let (_, st) = status(&mut t, 1);
    assert_eq!(
        interdomain(&st).dom,
        7,
        "any remote domid is recorded (dummy XSM)"
    );
    assert_eq!(t.hv.events.active, 1);
}

#[test]
fn compat_op_16() {
    let mut t = T::new();
    let mut b = EvtchnOp {
        cmd: EVTCHNOP_ALLOC_UNBOUND as u32,
        ..Default::default()
    };
    let alloc = EvtchnAllocUnbound {
        dom: SELF,
        remote_dom: SELF,
        port: 0,
    };
    set_member(ByteValued::as_mut_slice(&mut b.u), &alloc);
    t.write(ARG, 0, b.as_slice());
    assert_eq!(t.call(EVENT_CHANNEL_OP_COMPAT, [va(ARG), 0, 0, 0, 0, 0]), 0);
    assert_eq!(t.read_u32(ARG * 4096 + 8), 1);
    b.cmd = EVTCHNOP_INIT_CONTROL as u32;
    t.write(ARG, 0, b.as_slice());
    assert_eq!(
        t.call(EVENT_CHANNEL_OP_COMPAT, [va(ARG), 0, 0, 0, 0, 0]),
        -38
    );
}

#[test]
fn bind_virq_rules() {
    let mut t = T::new();
    let bind = |t: &mut T, virq: u32, vcpu: u32| {
        let (rc, out) = op(t, EVTCHNOP_BIND_VIRQ, &w32(&[virq, vcpu, 0]));
        (rc, member::<EvtchnBindVirq>(&out).port)
    };
    assert_eq!(bind(&mut t, VIRQ_TIMER, 0), (0, 1));
    assert_eq!(bind(&mut t, VIRQ_TIMER, 0).0, -17, "-EEXIST");
    assert_eq!(
        bind(&mut t, VIRQ_DEBUG, 1).0,
        -2,
        "per-vCPU VIRQ, no vCPU 1: -ENOENT"
    );
    assert_eq!(
        bind(&mut t, VIRQ_CONSOLE, 1).0,
        -22,
        "global VIRQ on vCPU 1: -EINVAL"
    );
    assert_eq!(bind(&mut t, NR_VIRQS, 0).0, -22);
    assert_eq!(bind(&mut t, u32::MAX, 0).0, -22);
    assert_eq!(bind(&mut t, VIRQ_CONSOLE, 0), (0, 2));
    assert_eq!(bind(&mut t, VIRQ_ARCH_7, 0), (0, 3));
    // A VIRQ port cannot be sent on; status names the VIRQ.
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, 1), -22);
    let (_, st) = status(&mut t, 2);
    assert_eq!(
        (st.status, member::<u32>(&st.u)),
        (EVTCHNSTAT_VIRQ, VIRQ_CONSOLE)
    );
    // bind_vcpu: global VIRQ yes, per-vCPU VIRQ -EINVAL, vCPU 1 -ENOENT.
    assert_eq!(op(&mut t, EVTCHNOP_BIND_VCPU, &w32(&[2, 0])).0, 0);
    assert_eq!(op(&mut t, EVTCHNOP_BIND_VCPU, &w32(&[1, 0])).0, -22);
    assert_eq!(op(&mut t, EVTCHNOP_BIND_VCPU, &w32(&[2, 1])).0, -2);
    // Closing the VIRQ port frees the VIRQ for a new binding.
    assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, 1), 0);
    assert_eq!(bind(&mut t, VIRQ_TIMER, 0), (0, 1));
    // The timer raises it.
    clear_upcall(&mut t);
    t.hv.send_timer_event();
    assert!(pending_2l(&t, 1));
    assert_eq!(upcall(&t), 1);
}

#[test]
fn two_level_send_mask_unmask() {
    let mut t = T::new();
    let p = bind_ipi(&mut t);
    assert_eq!(p, 1);
    clear_upcall(&mut t);
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, p), 0);
    assert!(pending_2l(&t, p));
    let vi = t.hv.vcpu.pv.vcpu_info_gpa;
    assert_eq!(t.hv.ram.read_u64_phys(vi + shinfo::VI_PENDING_SEL), Some(1));
    assert_eq!(upcall(&t), 1);
    // A masked port: pending is set, the selector and upcall are not ...
    let q = bind_ipi(&mut t);
    t.hv.ram
        .write_u64_phys(si(&t) + shinfo::EVTCHN_MASK, 1 << q);
    clear_upcall(&mut t);
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, q), 0);
    assert!(pending_2l(&t, q));
    assert_eq!(upcall(&t), 0);
    // ... until EVTCHNOP_unmask re-raises it (evtchn_2l_unmask).
    assert_eq!(simple(&mut t, EVTCHNOP_UNMASK, q), 0);
    assert_eq!(upcall(&t), 1);
    assert_eq!(
        t.hv.ram.read_u64_phys(si(&t) + shinfo::EVTCHN_MASK),
        Some(0)
    );
    // Unmask of an invalid port: -EINVAL; of a free valid port: 0.
    assert_eq!(simple(&mut t, EVTCHNOP_UNMASK, 64), -22);
    assert_eq!(simple(&mut t, EVTCHNOP_UNMASK, 63), 0);
    // Close clears the pending bit (evtchn_free).
    assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, p), 0);
    assert!(!pending_2l(&t, p));
    // Send on an unbound port is dropped; on a free port -EINVAL.
    let (_, u) = alloc_unbound(&mut t, SELF, SELF);
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, u), 0);
    assert!(!pending_2l(&t, u));
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, 40), -22);
}

#[test]
fn interdomain_loopback() {
    let mut t = T::new();
    let (_, a) = alloc_unbound(&mut t, SELF, SELF);
    let mut b = EvtchnBindInterdomain {
        remote_dom: SELF,
        remote_port: a,
        ..Default::default()
    };
    let (rc, out) = op(&mut t, EVTCHNOP_BIND_INTERDOMAIN, b.as_slice());
    let l = member::<EvtchnBindInterdomain>(&out).local_port;
    assert_eq!((rc, l), (0, 2));
    assert!(pending_2l(&t, l), "Xen raises the new local port");
    assert!(!pending_2l(&t, a));
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, l), 0);
    assert!(pending_2l(&t, a), "send on one end raises the other");
    let (_, st) = status(&mut t, l);
    assert_eq!(st.status, EVTCHNSTAT_INTERDOMAIN);
    let i = interdomain(&st);
    assert_eq!((i.dom, i.port), (0, a));
    // Binding again to a now-bound port: -EINVAL (and the port taken for it is released).
    assert_eq!(op(&mut t, EVTCHNOP_BIND_INTERDOMAIN, b.as_slice()).0, -22);
    assert_eq!(t.hv.events.active, 2);
    // Closing one end leaves the other unbound to us.
    assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, a), 0);
    let (_, st) = status(&mut t, l);
    assert_eq!((st.status, interdomain(&st).dom), (EVTCHNSTAT_UNBOUND, 0));
    b.remote_dom = 1;
    assert_eq!(op(&mut t, EVTCHNOP_BIND_INTERDOMAIN, b.as_slice()).0, -3);
}

#[test]
fn ports_are_bounded_and_buckets_grow() {
    let mut t = T::new();
    assert_eq!(status(&mut t, 63).0, 0);
    assert_eq!(
        status(&mut t, 64).0,
        -22,
        "port 64 is beyond the first bucket"
    );
    let mut last = 0;
    loop {
        let (rc, out) = op(&mut t, EVTCHNOP_BIND_IPI, &w32(&[0, 0]));
        if rc != 0 {
            assert_eq!(rc, -28, "-ENOSPC at the 2-level limit");
            break;
        }
        last = member::<EvtchnBindIpi>(&out).port;
    }
    assert_eq!(last, MAX_2L_PORTS - 1);
    assert_eq!(t.hv.events.chans.len(), MAX_2L_PORTS as usize);
    assert_eq!(t.hv.events.active, MAX_2L_PORTS - 1);
    // reset closes everything.
    assert_eq!(op(&mut t, EVTCHNOP_RESET, &SELF.to_le_bytes()).0, 0);
    assert_eq!(t.hv.events.active, 0);
    assert_eq!(op(&mut t, EVTCHNOP_RESET_CONT, &SELF.to_le_bytes()).0, -16);
    assert_eq!(op(&mut t, EVTCHNOP_RESET, &1u16.to_le_bytes()).0, -3);
    // Hostile pointers: -EFAULT.
    assert_eq!(
        t.call(EVENT_CHANNEL_OP, [EVTCHNOP_SEND, 0, 0, 0, 0, 0]),
        -14
    );
    assert_eq!(
        t.call(
            EVENT_CHANNEL_OP,
            [EVTCHNOP_SEND, 0xffff_8000_0000_0000, 0, 0, 0, 0]
        ),
        -14
    );
    assert_eq!(t.call(EVENT_CHANNEL_OP, [99, va(ARG), 0, 0, 0, 0]), -38);
}

const CB: u64 = 50; // control block frame
const ARRAY: u64 = 51; // event array page

fn init_fifo(t: &mut T) {
    let b = EvtchnInitControl {
        control_gfn: CB,
        ..Default::default()
    };
    let (rc, out) = op(t, EVTCHNOP_INIT_CONTROL, b.as_slice());
    assert_eq!(rc, 0);
    let out: EvtchnInitControl = member(&out);
    assert_eq!(u32::from(out.link_bits), EVTCHN_FIFO_LINK_BITS);
    let (rc, _) = op(t, EVTCHNOP_EXPAND_ARRAY, &ARRAY.to_le_bytes());
    assert_eq!(rc, 0);
}

fn word(t: &T, port: u32) -> u32 {
    t.read_u32(ARRAY * 4096 + u64::from(port) * 4)
}

#[test]
fn fifo_control_rules() {
    let mut t = T::new();
    assert_eq!(
        op(&mut t, EVTCHNOP_EXPAND_ARRAY, &ARRAY.to_le_bytes()).0,
        -95
    );
    assert_eq!(
        op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[64, 0])).0,
        -22,
        "invalid port"
    );
    assert_eq!(
        op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[1, 0])).0,
        -38,
        "2-level: no op"
    );
    let p = bind_ipi(&mut t);
    assert_eq!(
        op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[p, 0])).0,
        -38,
        "2-level"
    );
    let ic = |t: &mut T, gfn: u64, offset: u32, vcpu: u32| {
        let mut b = vec![0u8; 24];
        b[0..8].copy_from_slice(&gfn.to_le_bytes());
        b[8..12].copy_from_slice(&offset.to_le_bytes());
        b[12..16].copy_from_slice(&vcpu.to_le_bytes());
        op(t, EVTCHNOP_INIT_CONTROL, &b).0
    };
    assert_eq!(ic(&mut t, CB, 0, 1), -2);
    assert_eq!(ic(&mut t, CB, 4, 0), -22, "not 8-byte aligned");
    assert_eq!(ic(&mut t, CB, 4096 - 64, 0), -22, "crosses the page");
    assert_eq!(ic(&mut t, 1 << 40, 0, 0), -22, "not a frame of ours");
    assert!(t.hv.events.fifo.is_none());
    assert_eq!(ic(&mut t, CB, 4096 - 72, 0), 0);
    assert_eq!(ic(&mut t, CB, 0, 0), -22, "vCPU 0 has a control block");
    assert_eq!(op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[p, 16])).0, -22);
    assert_eq!(op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[p, 3])).0, 0);
    assert_eq!(
        op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[5, 3])).0,
        -13,
        "free: -EACCES"
    );
    // The event array is bounded: 128 pages.
    for i in 0..FIFO_MAX_ARRAY_PAGES as u64 {
        assert_eq!(
            op(&mut t, EVTCHNOP_EXPAND_ARRAY, &(100 + i).to_le_bytes()).0,
            0
        );
    }
    assert_eq!(
        op(&mut t, EVTCHNOP_EXPAND_ARRAY, &ARRAY.to_le_bytes()).0,
        -28
    );
    // reset returns to the 2-level ABI.
    assert_eq!(op(&mut t, EVTCHNOP_RESET, &SELF.to_le_bytes()).0, 0);
    assert!(t.hv.events.fifo.is_none());
}

#[test]
fn fifo_queues_like_xen() {
    let mut t = T::new();
    init_fifo(&mut t);
    let a = bind_ipi(&mut t);
    let b = bind_ipi(&mut t);
    clear_upcall(&mut t);
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, a), 0);
    let (pend, masked, linked) = (1u32 << 31, 1u32 << 30, 1u32 << 29);
    assert_eq!(word(&t, a), pend | linked);
    let cb = CB * 4096;
    let q = u64::from(EVTCHN_FIFO_PRIORITY_DEFAULT);
    assert_eq!(
        t.read_u32(cb + FIFO_CONTROL_BLOCK_HEAD + q * 4),
        a,
        "head of queue 7"
    );
    assert_eq!(t.read_u32(cb), 1 << 7, "ready bit of priority 7");
    assert_eq!(upcall(&t), 1);
    // The second event links behind the first.
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, b), 0);
    assert_eq!(word(&t, a), pend | linked | b);
    assert_eq!(word(&t, b), pend | linked);
    // A port already linked is busy: allocation skips it after close.
    assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, a), 0);
    assert_eq!(word(&t, a) & pend, 0, "close clears P, not L");
    let c = bind_ipi(&mut t);
    assert_eq!(c, b + 1, "linked port {a} is busy");
    // A masked event is pending but not linked; unmask links it.
    t.hv.ram
        .write_phys(ARRAY * 4096 + u64::from(c) * 4, &masked.to_le_bytes());
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, c), 0);
    assert_eq!(word(&t, c), pend | masked);
    assert_eq!(simple(&mut t, EVTCHNOP_UNMASK, c), 0);
    assert_eq!(word(&t, c), pend | linked);
    assert_eq!(word(&t, b) & EVTCHN_FIFO_LINK_MASK, c, "tail b links to c");
    // A port beyond the event array remembers its pending state until the page arrives.
    t.hv.events.chans.resize(2048, Chan::default());
    t.hv.events.chans[1500].state = ChanState::Ipi;
    t.hv.events.active += 1;
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, 1500), 0);
    assert!(t.hv.events.chans[1500].fifo_pending);
    assert_eq!(op(&mut t, EVTCHNOP_EXPAND_ARRAY, &52u64.to_le_bytes()).0, 0);
    assert_eq!(t.read_u32(52 * 4096 + (1500 - 1024) * 4), pend | linked);
}

#[test]
fn fifo_init_carries_2l_pending_state() {
    let mut t = T::new();
    let p = bind_ipi(&mut t);
    assert_eq!(simple(&mut t, EVTCHNOP_SEND, p), 0);
    init_fifo(&mut t);
    assert!(t.hv.events.chans[p as usize].fifo_pending);
    // expand_array re-raised it into the FIFO word.
    assert_eq!(word(&t, p), (1 << 31) | (1 << 29));
}
