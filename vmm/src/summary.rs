//! Counters kept during a run and the summary printed at exit.

use pagetable_validator::abi::hypercall::Hypercall;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

#[derive(Default, Debug, Clone)]
pub struct Stats {
    /// Hypercalls made (multicall entries counted under their own too); `Unknown` numbers are
    /// only counted, in `other_hypercalls`, so a guest cannot grow the map.
    pub hypercalls: BTreeMap<Hypercall, u64>,
    pub other_hypercalls: u64,
    /// Entries inside multicalls.
    pub multicall_entries: u64,
    /// Exits that ended in a continuation (a long batch preempted and re-entered, as on Xen).
    pub continuations: u64,
    pub pins: u64,
    pub unpins: u64,
    /// mmu_update requests and update_va_mapping calls that changed an entry.
    pub pte_updates: u64,
    pub baseptr_switches: u64,
    /// TLB flush / INVLPG requests (mmuext ops and UVMF flags).
    pub flush_requests: u64,
    /// CR3 reloads performed by the stubs (the VMM's TLB coherence, see tlb.rs).
    pub cr3_reloads: u64,
    /// Single-page flushes (`invlpg`) performed by the stubs.
    pub invlpgs: u64,
    pub exits: u64,
    /// Instructions KVM's emulator could not run and the VMM executed (see emulate.rs).
    pub emulated: u64,
    pub console_bytes: u64,
    pub efaults: u64,
    /// Exceptions, software interrupts and callbacks bounced to the guest.
    pub bounces: u64,
    pub irets: u64,
    /// SYSCALL/SYSENTER from guest user mode.
    pub syscalls: u64,
    /// Kernel <-> user mode switches (`toggle_guest_mode`).
    pub mode_switches: u64,
    /// Runs of the ring-0 sync trampoline, and the entries it re-stored.
    pub syncs: u64,
    pub synced_entries: u64,
    /// Guest writes into pinned L1s emulated and validated (writable pagetables).
    pub ptwr: u64,
    /// Wall time spent running the ring-0 sync trampoline (KVM_RUN included).
    pub ring0_time: std::time::Duration,
    /// Calls answered -ENOSYS as unsupported, the distinct (hypercall, sub-command) pairs
    /// named on stderr, and the calls to pairs no longer named (the set is bounded).
    pub unsupported: u64,
    pub unsupported_named: u64,
    pub unsupported_untracked: u64,
    /// VIRQ_TIMER events raised by the vCPU's timers, KVM_RUNs the host timer interrupted,
    /// and SCHEDOP_block/poll calls that blocked.
    pub timer_events: u64,
    pub timer_kicks: u64,
    pub blocks: u64,
    /// Time inside KVM_RUN and the VMM's own work between KVM_RUNs.
    pub exit_cost: crate::vcpu::ExitCost,
}

impl Stats {
    /// One finished hypercall `nr`.
    pub fn count(&mut self, call: Hypercall) {
        match call {
            Hypercall::Unknown(_) => self.other_hypercalls += 1,
            known => *self.hypercalls.entry(known).or_default() += 1,
        }
    }

    /// (name, count) of every hypercall made, by name; unnamed numbers as "other".
    pub fn hypercalls_by_name(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<(&'static str, u64)> = self
            .hypercalls
            .iter()
            .filter_map(|(&call, &n)| Some((call.name()?, n)))
            .collect();
        if self.other_hypercalls > 0 {
            v.push(("other", self.other_hypercalls));
        }
        v.sort_unstable();
        v
    }
}

/// Everything printed at the end of a run.
pub struct Summary<'a> {
    pub stats: &'a Stats,
    pub refusals: u64,
    pub violations: u64,
    /// Guest-triggered stderr messages (printed, suppressed by the rate limit).
    pub messages: (u64, u64),
    pub wall: Duration,
    pub outcome: &'a str,
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.stats;
        let total: u64 = s.hypercalls.values().sum::<u64>() + s.other_hypercalls;
        writeln!(f, "=== vmm summary: {} ===", self.outcome)?;
        write!(
            f,
            "hypercalls: {total} (incl. {} inside multicalls; {} continuations)",
            s.multicall_entries, s.continuations
        )?;
        for (k, v) in s.hypercalls_by_name() {
            write!(f, "  {k}={v}")?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "mmu: pins={} unpins={} pte_updates={} baseptr_switches={} flush_requests={} cr3_reloads={} invlpgs={}",
            s.pins, s.unpins, s.pte_updates, s.baseptr_switches, s.flush_requests, s.cr3_reloads, s.invlpgs
        )?;
        writeln!(
            f,
            "refusals={} violations={} efaults={} console_bytes={}",
            self.refusals, self.violations, s.efaults, s.console_bytes
        )?;
        writeln!(
            f,
            "pv: bounces={} irets={} syscalls={} mode_switches={} ring0_syncs={} synced_entries={} ptwr={}",
            s.bounces, s.irets, s.syscalls, s.mode_switches, s.syncs, s.synced_entries, s.ptwr
        )?;
        writeln!(
            f,
            "time: timer_events={} timer_interrupts={} blocks={}",
            s.timer_events, s.timer_kicks, s.blocks
        )?;
        writeln!(
            f,
            "messages: printed={} suppressed={} (rate limit)  unsupported: calls={} named={} not_named={}",
            self.messages.0,
            self.messages.1,
            s.unsupported,
            s.unsupported_named,
            s.unsupported_untracked
        )?;
        let c = &s.exit_cost;
        writeln!(
            f,
            "exit cost: kvm_runs={} in_kvm_ns={:.0} own_ns={:.0} idle_ns={:.0} per run: in_kvm={:.0} ns, own work={:.0} ns (tsc_khz={})",
            c.kvm_runs,
            c.ns(c.in_kvm),
            c.ns(c.own()),
            c.ns(c.idle),
            c.ns_per_run(c.in_kvm),
            c.ns_per_run(c.own()),
            c.tsc_khz
        )?;
        let wall = self.wall.as_secs_f64();
        write!(
            f,
            "vcpu exits={} ({:.0}/s; instructions emulated by the vmm: {})  ring-0 trampoline {:.3}s ({:.1}% of wall)  wall time={:.3}s",
            s.exits,
            s.exits as f64 / wall.max(1e-9),
            s.emulated,
            s.ring0_time.as_secs_f64(),
            100.0 * s.ring0_time.as_secs_f64() / wall.max(1e-9),
            wall
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pagetable_validator::abi::hypercall as hc;

    #[test]
    fn hypercalls_are_counted_by_number_and_printed_by_name() {
        let mut s = Stats::default();
        for nr in [hc::MMUEXT_OP, hc::MMU_UPDATE, hc::MMUEXT_OP, 99, 1 << 40] {
            s.count(Hypercall::from_nr(nr));
        }
        assert_eq!(s.hypercalls.len(), 2, "unnamed numbers take no key");
        assert_eq!(
            s.hypercalls_by_name(),
            [("mmu_update", 1), ("mmuext_op", 2), ("other", 2)]
        );
    }
}
