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
//!
//! The files: this one holds the vCPU's time state; `clock` the clocks, the time scale,
//! pvclock and the wall clock; `timers` the timers, blocking and the runstate.

use pagetable_validator::abi::vcpuop::XEN_RUNSTATE_UPDATE;

mod clock;
#[cfg(test)]
mod tests;
mod timers;

pub use clock::{Clock, HostClock, ManualClock, TimeScale};

/// Xen's `MILLISECS(1)`.
pub const MILLISECS: i64 = 1_000_000;
/// Xen's `STIME_DELTA_MAX`.
pub const STIME_DELTA_MAX: u64 = u64::MAX >> 2;

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
