//! PV time and the vCPU's timers, as Xen 4.17 keeps them (`arch/x86/time.c`,
//! `common/sched/core.c`, `common/time.c`).
//!
//! * System time is nanoseconds derived from the guest's TSC (the guest runs `rdtsc`
//!   natively): `stime(tsc) = scale_delta(tsc - tsc0, scale)` with Xen's `set_time_scale`
//!   for the vCPU's TSC frequency. `vcpu_info.time` publishes `(tsc_timestamp, system_time,
//!   tsc_to_system_mul, tsc_shift)` with the odd/even version protocol, so the guest's own
//!   extrapolation `system_time + scale(rdtsc - tsc_timestamp)` is exactly ours.
//! * `wc_sec/wc_nsec/wc_sec_hi` give the wall clock at system time 0.
//! * Timers: the singleshot timer (`VCPUOP_set_singleshot_timer`, `set_timer_op`), the
//!   periodic timer (`VCPUOP_set_periodic_timer`), the SCHEDOP_poll timeout. They fire from
//!   the vCPU loop (vcpu.rs), which arms a host timer for [`Hypervisor::next_deadline`] that
//!   interrupts KVM_RUN.
//! * The runstate area (`VCPUOP_register_runstate_memory_area`) is kept up to date at every
//!   block/wake-up and timer event.

use crate::hypercall::Hypervisor;
use pagetable_validator::abi::evtchn::VIRQ_TIMER;
use pagetable_validator::abi::shinfo;
use pagetable_validator::abi::vcpuop::{
    RUNSTATE_BLOCKED, RUNSTATE_RUNNING, VMASST_TYPE_RUNSTATE_UPDATE_FLAG, XEN_RUNSTATE_UPDATE,
};
use std::cell::Cell;
use std::rc::Rc;

/// Xen's `MILLISECS(1)`.
pub const MILLISECS: i64 = 1_000_000;
/// Xen's `STIME_DELTA_MAX`.
pub const STIME_DELTA_MAX: u64 = u64::MAX >> 2;

/// Where time comes from: the guest's TSC and the host's wall clock.
pub trait Clock {
    /// What `rdtsc` in the guest returns now.
    fn guest_tsc(&self) -> u64;
    /// The guest TSC frequency (kHz).
    fn tsc_khz(&self) -> u64;
    /// The wall clock now: seconds and nanoseconds since the Unix epoch.
    fn wallclock(&self) -> (u64, u32);
}

/// Xen's `struct time_scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeScale {
    pub shift: i8,
    pub mul_frac: u32,
}

impl TimeScale {
    /// `set_time_scale(ts, ticks_per_sec)`.
    pub fn new(ticks_per_sec: u64) -> Self {
        let mut tps64 = ticks_per_sec.max(1);
        let mut shift: i8 = 0;
        while tps64 > 2 * 1_000_000_000 {
            tps64 >>= 1;
            shift -= 1;
        }
        let mut tps32 = tps64 as u32;
        while tps32 <= 1_000_000_000 {
            tps32 <<= 1;
            shift += 1;
        }
        // div_frac(MILLISECS(1000), tps32): (1e9 << 32) / tps32, which fits 32 bits since
        // tps32 > 1e9.
        let mul_frac = ((1_000_000_000u64 << 32) / u64::from(tps32)) as u32;
        TimeScale { shift, mul_frac }
    }

    /// `scale_delta(delta, scale)`: `(delta << shift) * mul_frac >> 32`, 128-bit product.
    pub fn scale(&self, delta: u64) -> u64 {
        let d = if self.shift < 0 {
            delta >> (-self.shift) as u32
        } else {
            delta << self.shift as u32
        };
        ((u128::from(d) * u128::from(self.mul_frac)) >> 32) as u64
    }
}

/// Guest TSC from the host TSC: `guest = host + offset` (KVM adds the vCPU's TSC offset;
/// no TSC scaling is configured, so the rates are equal).
pub struct HostClock {
    offset: u64,
    khz: u64,
}

fn host_tsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64 (the only target this crate builds for);
    // it reads the time-stamp counter and touches no memory.
    unsafe { core::arch::x86_64::_rdtsc() }
}

impl HostClock {
    /// `guest_tsc_now` is a reading of the guest's TSC (KVM's MSR_IA32_TSC) taken between two
    /// host readings `before` and `after`.
    pub fn new(before: u64, guest_tsc_now: u64, after: u64, khz: u64) -> Self {
        let host_mid = before.wrapping_add(after.wrapping_sub(before) / 2);
        HostClock {
            offset: guest_tsc_now.wrapping_sub(host_mid),
            khz: khz.max(1),
        }
    }

    pub fn host_tsc() -> u64 {
        host_tsc()
    }
}

impl Clock for HostClock {
    fn guest_tsc(&self) -> u64 {
        host_tsc().wrapping_add(self.offset)
    }
    fn tsc_khz(&self) -> u64 {
        self.khz
    }
    fn wallclock(&self) -> (u64, u32) {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (d.as_secs(), d.subsec_nanos())
    }
}

/// A clock the tests (and the fuzzer's fake domain) move by hand.
#[derive(Clone)]
pub struct ManualClock {
    pub tsc: Rc<Cell<u64>>,
    pub khz: u64,
    pub wall: (u64, u32),
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            tsc: Rc::new(Cell::new(0)),
            khz: 1_000_000,
            wall: (1_700_000_000, 0),
        }
    }
}

impl Clock for ManualClock {
    fn guest_tsc(&self) -> u64 {
        self.tsc.get()
    }
    fn tsc_khz(&self) -> u64 {
        self.khz
    }
    fn wallclock(&self) -> (u64, u32) {
        self.wall
    }
}

/// What the vCPU waits for while it does not run.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Blocked {
    #[default]
    No,
    /// SCHEDOP_block (events enabled): any event wakes it.
    Block,
    /// SCHEDOP_poll: an event, a pending polled port (`port`: the one port polled, else
    /// any), or the timeout.
    Poll { port: Option<u32> },
}

/// Xen's `struct vcpu_runstate_info` as Xen keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Runstate {
    pub state: u32,
    pub state_entry_time: u64,
    pub time: [u64; 4],
}

impl Runstate {
    pub fn to_bytes(self, update_flag: bool) -> [u8; 48] {
        let mut b = [0u8; 48];
        b[0..4].copy_from_slice(&self.state.to_le_bytes());
        let mut entry = self.state_entry_time;
        if update_flag {
            entry |= XEN_RUNSTATE_UPDATE;
        }
        b[8..16].copy_from_slice(&entry.to_le_bytes());
        for (i, t) in self.time.iter().enumerate() {
            b[16 + i * 8..24 + i * 8].copy_from_slice(&t.to_le_bytes());
        }
        b
    }
}

/// The vCPU's time state.
pub struct PvTime {
    pub clock: Box<dyn Clock>,
    /// Guest TSC at system time 0.
    pub tsc0: u64,
    pub scale: TimeScale,
    pub singleshot: Option<i64>,
    pub periodic_period: i64,
    pub periodic_last_event: i64,
    pub periodic_next: Option<i64>,
    pub poll_timeout: Option<i64>,
    pub blocked: Blocked,
    pub runstate: Runstate,
    /// Guest VA of the runstate area (a kernel-mode address).
    pub runstate_guest: Option<u64>,
    /// Guest VA of the secondary (user-visible) vcpu_time_info.
    pub time_info_guest: Option<u64>,
}

impl PvTime {
    pub fn new(clock: Box<dyn Clock>) -> Self {
        let scale = TimeScale::new(clock.tsc_khz().saturating_mul(1000));
        let tsc0 = clock.guest_tsc();
        PvTime {
            clock,
            tsc0,
            scale,
            singleshot: None,
            periodic_period: 0,
            periodic_last_event: 0,
            periodic_next: None,
            poll_timeout: None,
            blocked: Blocked::No,
            runstate: Runstate::default(),
            runstate_guest: None,
            time_info_guest: None,
        }
    }

    /// System time (ns) at guest TSC `tsc`.
    pub fn stime_at(&self, tsc: u64) -> i64 {
        self.scale.scale(tsc.wrapping_sub(self.tsc0)) as i64
    }

    /// Xen's `NOW()`.
    pub fn now(&self) -> i64 {
        self.stime_at(self.clock.guest_tsc())
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<i64> {
        [self.singleshot, self.periodic_next, self.poll_timeout]
            .into_iter()
            .flatten()
            .min()
    }
}

impl Default for PvTime {
    fn default() -> Self {
        PvTime::new(Box::new(ManualClock::default()))
    }
}

impl Hypervisor {
    /// Installs the clock the guest's time comes from (system time restarts at 0) and
    /// publishes vcpu_info.time and the wall clock.
    pub fn start_clock(&mut self, clock: Box<dyn Clock>) {
        let t = PvTime::new(clock);
        let old = std::mem::replace(&mut self.time, t);
        self.time.runstate_guest = old.runstate_guest;
        self.time.time_info_guest = old.time_info_guest;
        self.update_vcpu_system_time();
        self.update_wallclock();
    }

    /// `NOW()`.
    pub fn now(&self) -> i64 {
        self.time.now()
    }

    /// `__update_vcpu_system_time(v, force = 1)`: a new (tsc_timestamp, system_time) pair in
    /// vcpu_info.time, written inside an odd version.
    pub fn update_vcpu_system_time(&mut self) {
        let tsc = self.time.clock.guest_tsc();
        let stime = self.time.stime_at(tsc);
        let at = self.vcpu.pv.vcpu_info_gpa + shinfo::VI_TIME;
        let mut b = [0u8; shinfo::TIME_INFO_SIZE as usize];
        let old_version = {
            let mut v = [0u8; 4];
            self.ram.read_phys(at, &mut v);
            u32::from_le_bytes(v)
        };
        // version_update_begin / version_update_end.
        let begin = old_version.wrapping_add(1) | 1;
        let end = begin.wrapping_add(1);
        b[8..16].copy_from_slice(&tsc.to_le_bytes());
        b[16..24].copy_from_slice(&(stime as u64).to_le_bytes());
        b[24..28].copy_from_slice(&self.time.scale.mul_frac.to_le_bytes());
        b[28] = self.time.scale.shift as u8;
        b[29] = 0; // flags: Xen sets TSC_STABLE only with clocksource=tsc (not the default)
        if !self.vcpu_info_writable() {
            return;
        }
        self.ram.write_phys(at, &begin.to_le_bytes());
        self.ram.write_phys(at + 4, &b[4..]);
        self.ram.write_phys(at, &end.to_le_bytes());
        if let Some(va) = self.time.time_info_guest {
            // update_secondary_system_time: best effort through the kernel's tables.
            b[0..4].copy_from_slice(&end.to_le_bytes());
            if let Some(cr3) = self.kernel_cr3() {
                let _ = self.ram.write_virt(cr3, va, &b);
            }
        }
    }

    /// `update_domain_wallclock_time`: the wall clock at system time 0.
    pub fn update_wallclock(&mut self) {
        let (sec, nsec) = self.time.clock.wallclock();
        let now = self.now().max(0) as u64;
        let wall_ns = u128::from(sec) * 1_000_000_000 + u128::from(nsec);
        let base = wall_ns.saturating_sub(u128::from(now));
        let bsec = (base / 1_000_000_000) as u64;
        let bnsec = (base % 1_000_000_000) as u32;
        let si = self.xen.shared_info_mfn() << 12;
        let mut v = [0u8; 4];
        self.ram.read_phys(si + shinfo::WC_VERSION, &mut v);
        let begin = u32::from_le_bytes(v).wrapping_add(1) | 1;
        self.ram
            .write_phys(si + shinfo::WC_VERSION, &begin.to_le_bytes());
        self.ram
            .write_phys(si + shinfo::WC_SEC, &(bsec as u32).to_le_bytes());
        self.ram
            .write_phys(si + shinfo::WC_NSEC, &bnsec.to_le_bytes());
        self.ram
            .write_phys(si + shinfo::WC_SEC_HI, &((bsec >> 32) as u32).to_le_bytes());
        self.ram.write_phys(
            si + shinfo::WC_VERSION,
            &begin.wrapping_add(1).to_le_bytes(),
        );
    }

    /// The kernel-mode L4 (guest-physical), for writes Xen makes through guest handles.
    pub(crate) fn kernel_cr3(&self) -> Option<u64> {
        if self.vcpu.pv.kernel_mode {
            Some(self.vcpu.cpu.sregs.cr3)
        } else {
            self.validator.current_base().map(|m| m << 12)
        }
    }

    /// `send_timer_event`: VIRQ_TIMER to vCPU 0.
    pub fn send_timer_event(&mut self) {
        self.stats.timer_events += 1;
        self.send_guest_vcpu_virq(VIRQ_TIMER);
    }

    /// The earliest armed timer (system time, ns).
    pub fn next_deadline(&self) -> Option<i64> {
        self.time.next_deadline()
    }

    /// Runs every timer that is due; returns whether any fired.
    pub fn run_timers(&mut self) -> bool {
        let now = self.now();
        let mut fired = false;
        if self.time.singleshot.is_some_and(|d| d <= now) {
            self.time.singleshot = None;
            self.send_timer_event();
            fired = true;
        }
        if self.time.periodic_next.is_some_and(|d| d <= now) {
            self.periodic_timer_work(now);
            fired = true;
        }
        if self.time.poll_timeout.is_some_and(|d| d <= now) {
            // poll_timer_fn: the poll ends (it already returned 0).
            self.time.poll_timeout = None;
            if matches!(self.time.blocked, Blocked::Poll { .. }) {
                self.unblock();
            }
            fired = true;
        }
        if fired {
            self.update_vcpu_system_time();
            self.update_runstate_area();
        }
        fired
    }

    /// `vcpu_periodic_timer_work_locked`.
    fn periodic_timer_work(&mut self, now: i64) {
        let period = self.time.periodic_period;
        if period == 0 {
            self.time.periodic_next = None;
            return;
        }
        let mut next = self.time.periodic_last_event.saturating_add(period);
        if now >= next {
            self.send_timer_event();
            self.time.periodic_last_event = now;
            next = now.saturating_add(period);
        }
        self.time.periodic_next = Some(next);
    }

    /// `vcpu_set_periodic_timer(v, value)`.
    pub fn set_periodic_timer(&mut self, period: i64) {
        self.time.periodic_next = None;
        self.time.periodic_period = period;
        if period != 0 {
            let now = self.now();
            self.periodic_timer_work(now);
        }
    }

    /// Whether the vCPU waits (SCHEDOP_block / SCHEDOP_poll).
    pub fn is_blocked(&self) -> bool {
        self.time.blocked != Blocked::No
    }

    /// The vCPU stops running until [`Hypervisor::unblock`].
    pub fn block(&mut self, how: Blocked) {
        self.time.blocked = how;
        self.stats.blocks += 1;
        self.runstate_change(RUNSTATE_BLOCKED);
    }

    /// `vcpu_unblock`.
    pub fn unblock(&mut self) {
        if self.time.blocked == Blocked::No {
            return;
        }
        self.time.blocked = Blocked::No;
        self.time.poll_timeout = None;
        self.runstate_change(RUNSTATE_RUNNING);
    }

    fn runstate_change(&mut self, state: u32) {
        let now = self.now().max(0) as u64;
        let r = &mut self.time.runstate;
        let old = (r.state as usize).min(3);
        r.time[old] = r.time[old].wrapping_add(now.saturating_sub(r.state_entry_time));
        r.state = state;
        r.state_entry_time = now;
        self.update_runstate_area();
    }

    /// The runstate as of now (`vcpu_runstate_get`).
    pub fn runstate_now(&self) -> Runstate {
        let now = self.now().max(0) as u64;
        let mut r = self.time.runstate;
        let s = (r.state as usize).min(3);
        r.time[s] = r.time[s].wrapping_add(now.saturating_sub(r.state_entry_time));
        r
    }

    /// `update_runstate_area`: copies the runstate to the registered guest area (through the
    /// kernel's tables; a failed copy is ignored, as Xen ignores it).
    pub fn update_runstate_area(&mut self) {
        let Some(va) = self.time.runstate_guest else {
            return;
        };
        let Some(cr3) = self.kernel_cr3() else {
            return;
        };
        let flag = self.vcpu.pv.vm_assist & (1 << VMASST_TYPE_RUNSTATE_UPDATE_FLAG) != 0;
        let r = self.time.runstate;
        if flag {
            let _ = self.ram.write_virt(cr3, va, &r.to_bytes(true));
        }
        let _ = self.ram.write_virt(cr3, va, &r.to_bytes(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
