//! The timers (singleshot, periodic, the SCHEDOP_poll timeout), blocking and waking, and
//! the runstate area kept up to date at each.

use super::{Blocked, Runstate};
use crate::hypercall::Hypervisor;
use pagetable_validator::abi::evtchn::VIRQ_TIMER;
use pagetable_validator::abi::vcpuop::{RUNSTATE_BLOCKED, RUNSTATE_RUNNING};
use pagetable_validator::abi::vmasst::VMASST_TYPE_RUNSTATE_UPDATE_FLAG;

impl Hypervisor {
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
            let _ = self.write_guest(cr3, va, &r.to_bytes(true));
        }
        let _ = self.write_guest(cr3, va, &r.to_bytes(false));
    }
}
