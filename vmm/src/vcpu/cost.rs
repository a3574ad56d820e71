//! Where a vCPU's wall time goes, counted on every KVM_RUN with two TSC reads (cheap enough to
//! be always on): inside KVM_RUN (the exit's hardware and KVM cost, plus the guest's own run
//! up to the exit) and between a KVM_RUN's return and the next KVM_RUN call (the VMM's own
//! work for the exit), minus the time a blocked vCPU sleeps. The summary prints both per
//! KVM_RUN; `scripts/bench-exits.sh` turns them into costs per guest operation.

use crate::pv::time::HostClock;

#[derive(Default, Debug, Clone)]
pub struct ExitCost {
    /// KVM_RUN calls (guest runs and ring-0 trampoline runs, interrupted ones included).
    pub kvm_runs: u64,
    /// Host TSC ticks inside KVM_RUN.
    pub in_kvm: u64,
    /// Host TSC ticks from a KVM_RUN's return to the next KVM_RUN call, sleeps included.
    pub between: u64,
    /// Host TSC ticks a blocked vCPU slept (SCHEDOP_block / poll): not work.
    pub idle: u64,
    /// The TSC rate, to print ticks as time (0: unknown).
    pub tsc_khz: u64,
    last_return: Option<u64>,
}

impl ExitCost {
    /// Just before KVM_RUN: the TSC at entry.
    #[inline]
    pub fn entering(&mut self) -> u64 {
        let now = HostClock::host_tsc();
        if let Some(r) = self.last_return {
            self.between += now.wrapping_sub(r);
        }
        now
    }

    /// Just after KVM_RUN returned (whatever it returned), `entered` from [`Self::entering`].
    #[inline]
    pub fn returned(&mut self, entered: u64) {
        let now = HostClock::host_tsc();
        self.kvm_runs += 1;
        self.in_kvm += now.wrapping_sub(entered);
        self.last_return = Some(now);
    }

    /// The VMM's own work: time between KVM_RUNs, sleeps excluded (ticks).
    pub fn own(&self) -> u64 {
        self.between.saturating_sub(self.idle)
    }

    /// `ticks` as nanoseconds (0 when the TSC rate is unknown).
    pub fn ns(&self, ticks: u64) -> f64 {
        if self.tsc_khz == 0 {
            return 0.0;
        }
        ticks as f64 * 1e6 / self.tsc_khz as f64
    }

    /// Mean nanoseconds per KVM_RUN of `ticks`.
    pub fn ns_per_run(&self, ticks: u64) -> f64 {
        self.ns(ticks) / self.kvm_runs.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_work_is_the_time_between_runs_minus_sleeps() {
        let mut c = ExitCost {
            tsc_khz: 1_000_000, // 1 tick = 1 ns
            ..Default::default()
        };
        for _ in 0..3 {
            let t = c.entering();
            c.returned(t);
        }
        assert_eq!(c.kvm_runs, 3);
        c.idle = c.between + 5;
        assert_eq!(c.own(), 0, "sleeps never make own work negative");
        c.idle = 0;
        assert_eq!(c.own(), c.between);
        c.between = 3000;
        assert_eq!(c.ns_per_run(c.own()), 1000.0);
    }
}
