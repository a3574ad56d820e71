use super::*;
use pagetable_validator::abi::shinfo;

#[test]
fn time_scale_matches_xen() {
    // set_time_scale for 1 GHz: tps32 doubled once past 1e9 (shift 1), mul = 2^31.
    assert_eq!(
        TimeScale::new(1_000_000_000),
        TimeScale {
            shift: 1,
            mul_frac: 0x8000_0000
        }
    );
    // 2.5 GHz: halved once to 1.25e9 (shift -1), mul = (1e9 << 32) / 1.25e9.
    let s = TimeScale::new(2_500_000_000);
    assert_eq!(s.shift, -1);
    assert_eq!(
        s.mul_frac,
        ((1_000_000_000u64 << 32) / 1_250_000_000) as u32
    );
    // 3 GHz -> 1.5e9, shift -1, mul = 0xaaaaaaaa.
    let s = TimeScale::new(3_000_000_000);
    assert_eq!((s.shift, s.mul_frac), (-1, 0xaaaa_aaaa));
    // 100 MHz: 1e8 doubled 4 times to 1.6e9 (shift 4).
    let s = TimeScale::new(100_000_000);
    assert_eq!(s.shift, 4);
    // One second of ticks is one second, within a nanosecond per second.
    for hz in [
        100_000_000u64,
        1_000_000_000,
        2_100_000_000,
        2_500_000_000,
        3_000_000_000,
    ] {
        let ns = TimeScale::new(hz).scale(hz);
        assert!((999_999_998..=1_000_000_000).contains(&ns), "{hz}: {ns}");
    }
    // Large deltas do not overflow (128-bit product as Xen's mulq/shrd).
    let s = TimeScale::new(3_000_000_000);
    let day = 86_400u64 * 3_000_000_000;
    let ns = s.scale(day);
    assert!((86_399_999_000_000..=86_400_000_000_000).contains(&ns));
}

#[test]
fn runstate_bytes() {
    let r = Runstate {
        state: RUNSTATE_BLOCKED,
        state_entry_time: 5,
        time: [1, 2, 3, 4],
    };
    let b = r.to_bytes(true);
    assert_eq!(&b[0..4], &2u32.to_le_bytes());
    assert_eq!(
        u64::from_le_bytes(b[8..16].try_into().unwrap()),
        5 | (1 << 63)
    );
    assert_eq!(u64::from_le_bytes(b[40..48].try_into().unwrap()), 4);
}

use crate::pv::event_channel::test_support::{va, T};
use pagetable_validator::abi::evtchn::{EVTCHNOP_BIND_VIRQ, VIRQ_TIMER};
use pagetable_validator::abi::hypercall::{
    EVENT_CHANNEL_OP, SCHED_OP, SET_TIMER_OP, VCPU_OP, XEN_VERSION,
};
use pagetable_validator::abi::sched::{SCHEDOP_BLOCK, SCHEDOP_POLL, SCHEDOP_YIELD};
use pagetable_validator::abi::vcpuop::*;

const ARG: u64 = 40;

fn bind_timer(t: &mut T) -> u32 {
    t.write(ARG, 0, &[0u8; 12]);
    assert_eq!(
        t.call(EVENT_CHANNEL_OP, [EVTCHNOP_BIND_VIRQ, va(ARG), 0, 0, 0, 0]),
        0
    );
    assert_eq!(VIRQ_TIMER, 0);
    t.read_u32(ARG * 4096 + 8)
}

fn vcpu_op(t: &mut T, cmd: u64, vcpu: u64, arg: &[u8]) -> i64 {
    t.write(ARG, 0, arg);
    t.call(VCPU_OP, [cmd, vcpu, va(ARG), 0, 0, 0])
}

fn time_info(t: &T) -> (u32, u64, u64, u32, i8) {
    let at = t.hv.vcpu.pv.vcpu_info_gpa + shinfo::VI_TIME;
    let mut b = [0u8; 32];
    t.hv.ram.read_phys(at, &mut b);
    (
        u32::from_le_bytes(b[0..4].try_into().unwrap()),
        u64::from_le_bytes(b[8..16].try_into().unwrap()),
        u64::from_le_bytes(b[16..24].try_into().unwrap()),
        u32::from_le_bytes(b[24..28].try_into().unwrap()),
        b[28] as i8,
    )
}

#[test]
fn pvclock_published_as_xen_does() {
    let mut t = T::new();
    let (version, tsc, stime, mul, shift) = time_info(&t);
    assert_eq!(version % 2, 0, "even: not being updated");
    assert_eq!(version, 2, "version_update_begin(0) = 1, end = 2");
    assert_eq!(
        (tsc, stime),
        (1_000_000, 0),
        "system time 0 at the clock's start"
    );
    assert_eq!((mul, shift), (0xaaaa_aaaa, -1), "set_time_scale(3 GHz)");
    t.advance_ns(1_000_000_000);
    assert!((999_999_990..=1_000_000_001).contains(&t.hv.now()));
    t.hv.update_vcpu_system_time();
    let (version, tsc, stime, ..) = time_info(&t);
    assert_eq!(version, 4);
    assert_eq!(tsc, 1_000_000 + 3_000_000_003);
    assert_eq!(stime as i64, t.hv.now());
    // The guest's pvclock extrapolation equals NOW() (to the truncation of one scale).
    t.advance_ns(12_345);
    let guest = stime + t.hv.time.scale.scale(t.clock.tsc.get() - tsc);
    assert!((guest as i64 - t.hv.now()).abs() <= 1);
    // Wall clock at system time 0: the fake wall clock said 1.7e9 s at boot.
    let si = t.hv.xen.shared_info_mfn() << 12;
    assert_eq!(t.read_u32(si + shinfo::WC_VERSION), 2);
    assert_eq!(t.read_u32(si + shinfo::WC_SEC), 1_700_000_000);
    assert_eq!(t.read_u32(si + shinfo::WC_NSEC), 0);
    assert_eq!(t.read_u32(si + shinfo::WC_SEC_HI), 0);
}

#[test]
fn singleshot_block_and_wake() {
    let mut t = T::new();
    let port = bind_timer(&mut t);
    let vi = t.hv.vcpu.pv.vcpu_info_gpa;
    t.hv.ram.write_phys(vi + 1, &[1]); // events masked, as at boot
    let deadline = (t.hv.now() + 5_000_000) as u64;
    let mut a = [0u8; 16];
    a[0..8].copy_from_slice(&deadline.to_le_bytes());
    assert_eq!(vcpu_op(&mut t, VCPUOP_SET_SINGLESHOT_TIMER, 0, &a), 0);
    assert_eq!(t.hv.next_deadline(), Some(deadline as i64));
    assert_eq!(t.call(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0, 0]), 0);
    assert_eq!(t.byte(vi + 1), 0, "SCHEDOP_block enables events");
    assert!(t.hv.is_blocked());
    assert!(!t.hv.run_timers(), "not yet due");
    t.advance_ns(5_000_000);
    assert!(t.hv.run_timers());
    assert!(!t.hv.is_blocked(), "VIRQ_TIMER woke the vCPU");
    assert_eq!(t.byte(vi), 1, "upcall pending");
    assert!(t.hv.local_events_need_delivery());
    assert_eq!(t.hv.next_deadline(), None, "singleshot is gone");
    assert_eq!(t.hv.stats.timer_events, 1);
    let _ = port;
    // Block with an event already pending returns at once.
    assert_eq!(t.call(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0, 0]), 0);
    assert!(!t.hv.is_blocked());
    // A singleshot timer in the past fires at once (and stop clears one).
    // (The guest's upcall handler clears the upcall, selector and pending bits.)
    t.hv.ram.write_phys(vi, &[0]);
    t.hv.ram.write_u64_phys(vi + shinfo::VI_PENDING_SEL, 0);
    t.hv.ram
        .write_u64_phys(t.hv.xen.shared_info_mfn() << 12 | shinfo::EVTCHN_PENDING, 0);
    a[0..8].copy_from_slice(&1u64.to_le_bytes());
    assert_eq!(vcpu_op(&mut t, VCPUOP_SET_SINGLESHOT_TIMER, 0, &a), 0);
    assert_eq!(t.byte(vi), 1);
    assert_eq!(vcpu_op(&mut t, VCPUOP_SET_SINGLESHOT_TIMER, 1, &a), -2);
    a[0..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(vcpu_op(&mut t, VCPUOP_SET_SINGLESHOT_TIMER, 0, &a), 0);
    assert_eq!(vcpu_op(&mut t, VCPUOP_STOP_SINGLESHOT_TIMER, 0, &[]), 0);
    assert_eq!(t.hv.next_deadline(), None);
}

#[test]
fn set_timer_op_and_periodic() {
    let mut t = T::new();
    t.advance_ns(10_000_000);
    let now = t.hv.now();
    assert_eq!(
        t.call(SET_TIMER_OP, [(now + 1000) as u64, 0, 0, 0, 0, 0]),
        0
    );
    assert_eq!(t.hv.time.singleshot, Some(now + 1000));
    assert_eq!(t.call(SET_TIMER_OP, [0, 0, 0, 0, 0, 0]), 0);
    assert_eq!(t.hv.time.singleshot, None);
    // Negative or > 2^50 ns ahead: 100 ms from now (Xen's "Linux workaround").
    assert_eq!(t.call(SET_TIMER_OP, [u64::MAX, 0, 0, 0, 0, 0]), 0);
    assert_eq!(t.hv.time.singleshot, Some(now + 100 * MILLISECS));
    assert_eq!(
        t.call(SET_TIMER_OP, [(now + (1 << 51)) as u64, 0, 0, 0, 0, 0]),
        0
    );
    assert_eq!(t.hv.time.singleshot, Some(now + 100 * MILLISECS));
    // Periodic: at least 1 ms, at most STIME_DELTA_MAX.
    let p = |v: u64| v.to_le_bytes();
    assert_eq!(
        vcpu_op(&mut t, VCPUOP_SET_PERIODIC_TIMER, 0, &p(999_999)),
        -22
    );
    assert_eq!(
        vcpu_op(&mut t, VCPUOP_SET_PERIODIC_TIMER, 0, &p(1 << 62)),
        -22
    );
    bind_timer(&mut t);
    // The first period is due at once (periodic_last_event 0 + 1 ms <= 10 ms).
    assert_eq!(
        vcpu_op(&mut t, VCPUOP_SET_PERIODIC_TIMER, 0, &p(1_000_000)),
        0
    );
    assert_eq!(t.hv.stats.timer_events, 1);
    assert_eq!(t.hv.time.periodic_next, Some(now + 1_000_000));
    t.advance_ns(1_000_000);
    t.hv.time.singleshot = None;
    assert!(t.hv.run_timers());
    assert_eq!(t.hv.stats.timer_events, 2);
    assert_eq!(vcpu_op(&mut t, VCPUOP_STOP_PERIODIC_TIMER, 0, &[]), 0);
    assert_eq!(t.hv.next_deadline(), None);
}

#[test]
fn poll() {
    let mut t = T::new();
    let port = bind_timer(&mut t);
    let vi = t.hv.vcpu.pv.vcpu_info_gpa;
    t.hv.ram.write_phys(vi + 1, &[1]);
    // sched_poll { ports, nr_ports, timeout } at ARG, the port list at ARG + 0x100.
    let poll = |t: &mut T, ports: &[u32], nr: u32, timeout: u64| {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&(va(ARG) + 0x100).to_le_bytes());
        b[8..12].copy_from_slice(&nr.to_le_bytes());
        b[16..24].copy_from_slice(&timeout.to_le_bytes());
        t.write(ARG, 0, &b);
        let pl: Vec<u8> = ports.iter().flat_map(|p| p.to_le_bytes()).collect();
        t.write(ARG, 0x100, &pl);
        t.call(SCHED_OP, [SCHEDOP_POLL, va(ARG), 0, 0, 0, 0])
    };
    assert_eq!(poll(&mut t, &[], 129, 0), -22, "more than 128 ports");
    assert_eq!(poll(&mut t, &[77], 1, 0), -22, "invalid port");
    let deadline = (t.hv.now() + 1000) as u64;
    assert_eq!(poll(&mut t, &[port], 1, deadline), 0);
    assert!(t.hv.is_blocked());
    assert_eq!(t.hv.next_deadline(), Some(deadline as i64));
    t.advance_ns(1000);
    assert!(t.hv.run_timers());
    assert!(!t.hv.is_blocked(), "the poll timed out");
    // A polled port that becomes pending wakes it, events masked or not.
    assert_eq!(poll(&mut t, &[port], 1, 0), 0);
    assert!(t.hv.is_blocked());
    t.hv.send_timer_event();
    assert!(!t.hv.is_blocked());
    // Already pending: returns at once.
    assert_eq!(poll(&mut t, &[port], 1, 0), 0);
    assert!(!t.hv.is_blocked());
    assert_eq!(t.call(SCHED_OP, [SCHEDOP_YIELD, 0, 0, 0, 0, 0]), 0);
    assert_eq!(t.call(SCHED_OP, [SCHEDOP_POLL, 0, 0, 0, 0, 0]), -14);
}

#[test]
fn vcpu_op_answers() {
    let mut t = T::new();
    assert_eq!(vcpu_op(&mut t, VCPUOP_IS_UP, 0, &[]), 1);
    for id in [1u64, 31, 8191, 1 << 32 | 1] {
        assert_eq!(vcpu_op(&mut t, VCPUOP_IS_UP, id, &[]), -2);
    }
    assert_eq!(
        vcpu_op(&mut t, VCPUOP_IS_UP, 1 << 32, &[]),
        1,
        "unsigned int vcpuid"
    );
    assert_eq!(vcpu_op(&mut t, VCPUOP_GET_PHYSID, 0, &[0; 8]), -22);
    assert_eq!(vcpu_op(&mut t, VCPUOP_UP, 0, &[]), 0);
    assert_eq!(vcpu_op(&mut t, VCPUOP_INITIALISE, 0, &[]), -17);
    assert_eq!(t.call(VCPU_OP, [VCPUOP_INITIALISE, 0, 0, 0, 0, 0]), -14);
    // register_runstate_memory_area: written at once; then kept up to date.
    let area = va(ARG) + 0x200;
    assert_eq!(
        vcpu_op(
            &mut t,
            VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
            0,
            &area.to_le_bytes()
        ),
        0
    );
    assert_eq!(t.read_u32(ARG * 4096 + 0x200), RUNSTATE_RUNNING);
    let bad = 0xffff_8000_0000_0000u64;
    assert_eq!(
        vcpu_op(
            &mut t,
            VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA,
            0,
            &bad.to_le_bytes()
        ),
        -14
    );
    t.advance_ns(1000);
    assert_eq!(t.call(SCHED_OP, [SCHEDOP_BLOCK, 0, 0, 0, 0, 0]), 0);
    assert_eq!(t.read_u32(ARG * 4096 + 0x200), RUNSTATE_BLOCKED);
    let running = t.hv.ram.read_u64_phys(ARG * 4096 + 0x200 + 16).unwrap();
    assert!((999..=1001).contains(&running), "{running}");
    t.hv.unblock();
    assert_eq!(t.read_u32(ARG * 4096 + 0x200), RUNSTATE_RUNNING);
    // register_vcpu_info: -ENXIO for a bad offset, then the move.
    let reg = |mfn: u64, off: u32| {
        let mut b = [0u8; 16];
        b[0..8].copy_from_slice(&mfn.to_le_bytes());
        b[8..12].copy_from_slice(&off.to_le_bytes());
        b
    };
    assert_eq!(
        vcpu_op(&mut t, VCPUOP_REGISTER_VCPU_INFO, 0, &reg(60, 4)),
        -6
    );
    assert_eq!(
        vcpu_op(&mut t, VCPUOP_REGISTER_VCPU_INFO, 0, &reg(60, 4033)),
        -6
    );
    assert_eq!(
        vcpu_op(&mut t, VCPUOP_REGISTER_VCPU_INFO, 0, &reg(1 << 30, 0)),
        -22
    );
    let old = t.hv.vcpu.pv.vcpu_info_gpa;
    t.hv.ram.write_phys(old + 1, &[1]);
    assert_eq!(
        vcpu_op(&mut t, VCPUOP_REGISTER_VCPU_INFO, 0, &reg(60, 64)),
        0
    );
    let vi = 60 * 4096 + 64;
    assert_eq!(t.hv.vcpu.pv.vcpu_info_gpa, vi);
    assert_eq!(t.byte(vi), 1, "everything marked pending");
    assert_eq!(t.byte(vi + 1), 1, "the mask was copied");
    assert_eq!(t.hv.ram.read_u64_phys(vi + 8), Some(u64::MAX));
    let (version, ..) = time_info(&t);
    assert_eq!(version % 2, 0);
    assert!(version >= 2, "time published in the new place");
    assert_eq!(
        vcpu_op(&mut t, VCPUOP_REGISTER_VCPU_INFO, 0, &reg(61, 0)),
        -22
    );
    // get_runstate_info copies the runstate out.
    assert_eq!(vcpu_op(&mut t, VCPUOP_GET_RUNSTATE_INFO, 0, &[0; 48]), 0);
    // The last vCPU going down powers the domain off.
    let mut ctx = crate::hypercall::Ctx::new(t.hv.vcpu.cpu.sregs.cr3, 0);
    assert_eq!(
        t.hv.hypercall(&mut ctx, VCPU_OP, [VCPUOP_DOWN, 0, 0, 0, 0, 0]),
        0
    );
    assert_eq!(ctx.shutdown, Some(0));
    // Unknown: -ENOSYS.
    assert_eq!(vcpu_op(&mut t, 99, 0, &[]), -38);
    let _ = XEN_VERSION;
}

/// The guest's TSC as we estimate it is never ahead of the guest's own, whatever the host did
/// between the two readings around the guest's (a preempted reading here once froze Linux's
/// clock at 7105499705 s: pvclock scaled a negative delta, 2^64 cycles).
#[test]
fn host_clock_offset_never_runs_ahead_of_the_guest() {
    // A guest TSC running `skew` ahead of the host's; the guest reading is taken at host time
    // `at`, anywhere between `before` and `after` (a preemption of up to 1 ms on either side).
    let skew = 5_000_000u64;
    for (before, at, after) in [
        (1000, 1000, 1000),
        (1000, 1000, 2_600_000),
        (1000, 2_599_000, 2_600_000),
    ] {
        let c = HostClock::new(before, at + skew, after, 2_600_000);
        let now = HostClock::host_tsc();
        // c.guest_tsc() reads the host TSC again, later than `now`: compare against a true
        // guest clock read no earlier than that.
        let estimate = c.guest_tsc();
        let truth = HostClock::host_tsc().wrapping_add(skew);
        assert!(
            estimate <= truth,
            "estimate {estimate} > true {truth} ({before}, {at}, {after})"
        );
        // And behind by no more than the reading's width.
        assert!(
            truth - estimate <= (after - before) + (HostClock::host_tsc() - now),
            "{before} {at} {after}"
        );
    }
}
