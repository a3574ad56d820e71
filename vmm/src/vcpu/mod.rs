//! The vCPU loop: KVM_RUN, turn KVM's exit into an [`Exit`], load the register image, let
//! [`Hypervisor::handle_exit`] decide, run the ring-0 sync trampoline when stores or a flush
//! are pending, write the image back, repeat.
//!
//! The guest kernel runs at CPL 3 as on Xen: it cannot touch CR3, CR0, the IDT or the GDT,
//! and every pagetable frame is mapped read-only in every address space the validator
//! accepted, so the CPU enforces the rules between exits. What the VMM changes in guest page
//! tables from userspace reaches the hardware through ring-0 code (see pv/xen_area/).
//!
//! Time: before every KVM_RUN the loop runs the vCPU's due timers (pv/time.rs), sleeps while
//! the vCPU is blocked (SCHEDOP_block/poll) until a timer wakes it, delivers a pending event
//! upcall, and arms a host timer (a POSIX timer signalling this thread) for the next deadline.
//! The signal's handler sets KVM's `immediate_exit`, so a deadline that passes while the guest
//! runs — or just before KVM_RUN starts — ends KVM_RUN with EINTR (the Firecracker/rust-vmm
//! pattern) and the timer event is delivered at once.
//!
//! This file holds the run loop; `kick.rs` the signals and host timers that end a KVM_RUN
//! (the deadline [`Kicker`](kick::Kicker), the SIGINT/SIGTERM/`--timeout` `Stopper`);
//! `sync.rs` the runner of the ring-0 sync trampoline; `cost.rs` the time counted around
//! every KVM_RUN (in KVM vs the VMM's own work).

mod cost;
mod kick;
mod sync;

pub use cost::ExitCost;

use kick::{stop_requested, Kicker, Stopper};
use sync::sync;

use crate::arch::Machine;
use crate::builder::HYPERCALL_PORT;
use crate::exit::{Action, Exit};
use crate::hypercall::{Hypervisor, LastCall};
use crate::loader::elf::KernelImage;
use crate::pv::time::{Clock, HostClock};
use crate::pv::xen_area::port;
use crate::tlb::Flush;
use kvm_bindings::{
    kvm_msr_entry, kvm_regs, kvm_sregs, Msrs, KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS,
};
use kvm_ioctls::{SyncReg, VcpuExit};
use std::fmt;
use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum VcpuError {
    #[error("KVM_RUN failed: {0}")]
    Run(vmm_sys_util::errno::Error),
    #[error("KVM: {what}: {err}")]
    Regs {
        what: &'static str,
        err: vmm_sys_util::errno::Error,
    },
    #[error("host timer: {what}: {err}")]
    Timer {
        what: &'static str,
        err: vmm_sys_util::errno::Error,
    },
}

fn regs_err(what: &'static str) -> impl FnOnce(vmm_sys_util::errno::Error) -> VcpuError {
    move |err| VcpuError::Regs { what, err }
}

/// Why the guest stopped without shutting down.
#[derive(Debug, Clone)]
pub struct StopReport {
    pub what: String,
    pub rip: u64,
    pub rsp: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cpl: u8,
    pub kernel_mode: bool,
    pub symbol: Option<String>,
    pub last: Option<LastCall>,
}

impl fmt::Display for StopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.what)?;
        write!(
            f,
            "  RIP {:#018x}{}  RSP {:#018x}  CR2 {:#018x}  CR3 {:#018x}  CPL {} ({} mode)",
            self.rip,
            self.symbol
                .as_ref()
                .map(|s| format!(" <{s}>"))
                .unwrap_or_default(),
            self.rsp,
            self.cr2,
            self.cr3,
            self.cpl,
            if self.kernel_mode { "kernel" } else { "user" }
        )?;
        match &self.last {
            Some(l) => write!(f, "\n  last hypercall: {l}"),
            None => write!(f, "\n  last hypercall: none"),
        }
    }
}

#[derive(Debug)]
pub enum Outcome {
    /// SCHEDOP_shutdown with this reason.
    Shutdown(u32),
    /// Xen would have crashed the domain (`domain_crash`).
    Crashed(Box<StopReport>),
    /// The VMM stopped the guest.
    Stopped(Box<StopReport>),
    /// Ended from outside (`--timeout`, SIGINT, SIGTERM): why.
    Interrupted(String),
}

/// One KVM_RUN, its exit as an [`Exit`] (None: run again, e.g. EINTR), timed into `cost`.
fn run_once(m: &mut Machine, cost: &mut ExitCost) -> Result<Option<Exit>, VcpuError> {
    // Registers written to kvm_run for this entry: KVM may return (EINTR) before taking them,
    // and then overwrites kvm_run with the vCPU's old registers on the way out.
    let pending = (m.vcpu.get_kvm_run().kvm_dirty_regs != 0).then(|| m.vcpu.sync_regs());
    let entered = cost.entering();
    let ran = m.vcpu.run();
    cost.returned(entered);
    let not_entered = |m: &mut Machine| {
        if let Some(p) = pending {
            if m.vcpu.get_kvm_run().kvm_dirty_regs != 0 {
                // Still pending: put them back for the next entry (and for `load`).
                *m.vcpu.sync_regs_mut() = p;
            }
        }
    };
    Ok(Some(match ran {
        Ok(VcpuExit::IoOut(p, data)) if p == HYPERCALL_PORT && data.len() == 4 => {
            Exit::HypercallPort
        }
        Ok(VcpuExit::IoOut(p, _))
            if (port::EXCEPTION..=port::SYNC_DONE).contains(&p)
                || (port::VECTOR_BASE..=port::VECTOR_OTHER).contains(&p) =>
        {
            Exit::Stub(p)
        }
        Ok(VcpuExit::IoOut(port, _)) => Exit::Io { port, write: true },
        Ok(VcpuExit::IoIn(port, data)) => {
            data.fill(0xff);
            Exit::Io { port, write: false }
        }
        Ok(VcpuExit::Hlt) => Exit::Hlt,
        Ok(VcpuExit::Shutdown) => Exit::TripleFault,
        Ok(VcpuExit::InternalError) => Exit::Internal,
        Ok(VcpuExit::FailEntry(reason, _)) => Exit::FailEntry(reason),
        Ok(VcpuExit::MmioRead(addr, data)) => {
            data.fill(0xff);
            Exit::Mmio(addr)
        }
        Ok(VcpuExit::MmioWrite(addr, _)) => Exit::Mmio(addr),
        Ok(VcpuExit::Intr) => {
            m.vcpu.set_kvm_immediate_exit(0);
            not_entered(m);
            return Ok(None);
        }
        Ok(other) => Exit::Other(format!("{other:?}")),
        Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
            // The host timer's signal set immediate_exit; the loop checks the timers next.
            m.vcpu.set_kvm_immediate_exit(0);
            not_entered(m);
            return Ok(None);
        }
        Err(e) => return Err(VcpuError::Run(e)),
    }))
}

/// Registers travel in kvm_run (KVM_CAP_SYNC_REGS, switched on by [`run`]): KVM copies them
/// out at every exit and in at the next entry when marked dirty, so an exit costs no
/// KVM_GET/SET_(S)REGS ioctl. Each of those costs ~10 µs on the project's nested kvm_pvm hosts
/// (a vcpu_load/vcpu_put reading host MSRs): three per exit were most of the VMM's own work.
fn synced(m: &mut Machine) -> bool {
    m.vcpu.get_kvm_run().kvm_valid_regs & u64::from(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS) != 0
}

fn load(m: &mut Machine, hv: &mut Hypervisor) -> Result<(), VcpuError> {
    let c = &mut hv.vcpu.cpu;
    if synced(m) {
        let s = m.vcpu.sync_regs();
        c.regs = s.regs;
        c.sregs = s.sregs;
    } else {
        c.regs = m.vcpu.get_regs().map_err(regs_err("get regs"))?;
        c.sregs = m.vcpu.get_sregs().map_err(regs_err("get sregs"))?;
    }
    c.regs_dirty = false;
    c.sregs_dirty = false;
    Ok(())
}

/// Makes `regs` / `sregs` the vCPU's at the next entry.
fn put(
    m: &mut Machine,
    regs: Option<&kvm_regs>,
    sregs: Option<&kvm_sregs>,
) -> Result<(), VcpuError> {
    if synced(m) {
        if let Some(s) = sregs {
            m.vcpu.sync_regs_mut().sregs = *s;
            m.vcpu.set_sync_dirty_reg(SyncReg::SystemRegister);
        }
        if let Some(r) = regs {
            m.vcpu.sync_regs_mut().regs = *r;
            m.vcpu.set_sync_dirty_reg(SyncReg::Register);
        }
        return Ok(());
    }
    if let Some(s) = sregs {
        m.vcpu.set_sregs(s).map_err(regs_err("set sregs"))?;
    }
    if let Some(r) = regs {
        m.vcpu.set_regs(r).map_err(regs_err("set regs"))?;
    }
    Ok(())
}

fn store(m: &mut Machine, hv: &mut Hypervisor) -> Result<(), VcpuError> {
    let c = &mut hv.vcpu.cpu;
    if let Some(xcr0) = c.xcr0_pending.take() {
        crate::arch::set_xcr0(&m.vcpu, xcr0).map_err(regs_err("set XCR0"))?;
    }
    let regs = c.regs_dirty.then_some(&c.regs);
    let sregs = c.sregs_dirty.then_some(&c.sregs);
    put(m, regs, sregs)?;
    c.regs_dirty = false;
    c.sregs_dirty = false;
    Ok(())
}

fn report(hv: &Hypervisor, img: &KernelImage, what: String) -> Box<StopReport> {
    let c = &hv.vcpu.cpu;
    Box::new(StopReport {
        what,
        rip: c.regs.rip,
        rsp: c.regs.rsp,
        cr2: c.sregs.cr2,
        cr3: c.sregs.cr3,
        cpl: c.cpl(),
        kernel_mode: hv.vcpu.pv.kernel_mode,
        symbol: img.symbolize(c.regs.rip),
        last: hv.last,
    })
}

pub fn run(
    m: &mut Machine,
    hv: &mut Hypervisor,
    img: &KernelImage,
    timeout: Option<Duration>,
) -> Result<Outcome, VcpuError> {
    start_time(m, hv)?;
    if m.has_sync_regs() {
        m.vcpu.set_sync_valid_reg(SyncReg::Register);
        m.vcpu.set_sync_valid_reg(SyncReg::SystemRegister);
    }
    let mut kicker = Kicker::new(m)?;
    let _stopper = Stopper::new(timeout)?;
    let mut can_deliver = true;
    loop {
        if let Some(why) = stop_requested() {
            hv.log.flush();
            return Ok(Outcome::Interrupted(why));
        }
        if let Some(o) = before_entry(m, hv, img, &mut kicker, can_deliver)? {
            hv.log.flush();
            return Ok(o);
        }
        let Some(exit) = run_once(m, &mut hv.stats.exit_cost)? else {
            // The host timer (or another signal) interrupted KVM_RUN: the image must be the
            // vCPU's current state before an event is delivered.
            hv.stats.timer_kicks += 1;
            kicker.armed_for = None;
            load(m, hv)?;
            // KVM may hold an exception it has not delivered yet (a guest #PF found while
            // shadowing): it is injected at the next entry, at whatever RIP we set. Bouncing
            // an upcall now would have it taken at the callback's first instruction with the
            // old CR2 (measured), so events wait for the exception's exit.
            can_deliver = !exception_in_flight(m)?;
            continue;
        };
        can_deliver = true;
        hv.stats.exits += 1;
        load(m, hv)?;
        match hv.handle_exit(exit) {
            Action::Resume => {}
            Action::Shutdown(r) => {
                hv.log.flush();
                return Ok(Outcome::Shutdown(r));
            }
            Action::Crash(what) => {
                hv.log.flush();
                return Ok(Outcome::Crashed(report(
                    hv,
                    img,
                    format!("domain crashed: {what}"),
                )));
            }
            Action::Stop(what) => {
                hv.log.flush();
                return Ok(Outcome::Stopped(report(
                    hv,
                    img,
                    format!("guest stopped: {what}"),
                )));
            }
        }
        if hv.ram.has_touched() || hv.pending_flush != Flush::None {
            if let Err(what) = sync(m, hv)? {
                return Ok(Outcome::Stopped(report(
                    hv,
                    img,
                    format!("guest stopped: {what}"),
                )));
            }
        }
        store(m, hv)?;
        // A killed VMM loses at most the records of the exit in progress.
        hv.log.flush();
    }
}

/// Whether KVM has an exception (or NMI/interrupt) pending or half-injected for the vCPU.
fn exception_in_flight(m: &Machine) -> Result<bool, VcpuError> {
    let e = m
        .vcpu
        .get_vcpu_events()
        .map_err(regs_err("get vcpu events"))?;
    Ok(e.exception.injected != 0
        || e.exception.pending != 0
        || e.interrupt.injected != 0
        || e.nmi.injected != 0)
}

/// The longest one sleep of a blocked vCPU lasts before the loop looks again.
const MAX_BLOCK_SLEEP: Duration = Duration::from_secs(1);

/// Before the guest runs again: due timers, a blocked vCPU's sleep, the event upcall, the
/// host timer for the next deadline. `Some(outcome)`: the guest cannot continue.
fn before_entry(
    m: &mut Machine,
    hv: &mut Hypervisor,
    img: &KernelImage,
    kicker: &mut Kicker,
    can_deliver: bool,
) -> Result<Option<Outcome>, VcpuError> {
    let mut fired = hv.run_timers();
    let slept = hv.is_blocked();
    while hv.is_blocked() {
        if let Some(why) = stop_requested() {
            return Ok(Some(Outcome::Interrupted(why)));
        }
        let Some(deadline) = hv.next_deadline() else {
            return Ok(Some(Outcome::Stopped(report(
                hv,
                img,
                "guest stopped: the vCPU blocked with no timer armed: nothing can wake it".into(),
            ))));
        };
        let now = hv.now();
        if deadline > now {
            let t0 = HostClock::host_tsc();
            std::thread::sleep(
                Duration::from_nanos(deadline.saturating_sub(now) as u64).min(MAX_BLOCK_SLEEP),
            );
            hv.stats.exit_cost.idle += HostClock::host_tsc().wrapping_sub(t0);
        }
        fired |= hv.run_timers();
    }
    if fired || slept {
        // Events are delivered only to guest code (CPL 3); a vCPU interrupted inside a ring-0
        // stub gets them at the stub's exit.
        if hv.vcpu.cpu.cpl() == 3 && can_deliver {
            if let Err(c) = hv.deliver_events() {
                return Ok(Some(Outcome::Crashed(report(
                    hv,
                    img,
                    format!("domain crashed: {c}"),
                ))));
            }
        }
        store(m, hv)?;
    }
    kicker.arm(hv.next_deadline(), hv.now())?;
    Ok(None)
}

/// The guest's time from the host TSC: KVM's TSC frequency for the vCPU and the offset
/// between the guest's TSC (MSR_IA32_TSC, read between two host readings) and the host's.
/// Readings of the guest's TSC against the host's at start (see [`start_time`]).
const TSC_OFFSET_SAMPLES: usize = 8;

fn start_time(m: &mut Machine, hv: &mut Hypervisor) -> Result<(), VcpuError> {
    const MSR_IA32_TSC: u32 = 0x10;
    let khz = match m.vcpu.get_tsc_khz() {
        Ok(k) if k > 0 => u64::from(k),
        _ => calibrate_tsc_khz(),
    };
    let mut msrs = Msrs::from_entries(&[kvm_msr_entry {
        index: MSR_IA32_TSC,
        ..Default::default()
    }])
    .map_err(|_| VcpuError::Regs {
        what: "MSR list",
        err: vmm_sys_util::errno::Error::new(libc::EINVAL),
    })?;
    // The tightest of a few readings: a reading the host preempted (this machine is shared)
    // would put the offset off by the preemption.
    let mut best: Option<(u64, u64, u64)> = None;
    for _ in 0..TSC_OFFSET_SAMPLES {
        let before = HostClock::host_tsc();
        m.vcpu
            .get_msrs(&mut msrs)
            .map_err(regs_err("read MSR_IA32_TSC"))?;
        let after = HostClock::host_tsc();
        let sample = (before, msrs.as_slice()[0].data, after);
        if best.is_none_or(|(b, _, a)| after.wrapping_sub(before) < a.wrapping_sub(b)) {
            best = Some(sample);
        }
    }
    let (before, guest, after) = best.expect("at least one sample");
    let clock = HostClock::new(before, guest, after, khz);
    hv.stats.exit_cost.tsc_khz = khz;
    log::info!(
        "pv time: TSC {khz} kHz, guest TSC {:#x} at start",
        clock.guest_tsc()
    );
    hv.start_clock(Box::new(clock));
    Ok(())
}

/// The host TSC's rate against CLOCK_MONOTONIC over 20 ms (when KVM cannot tell).
fn calibrate_tsc_khz() -> u64 {
    let t0 = std::time::Instant::now();
    let c0 = HostClock::host_tsc();
    std::thread::sleep(Duration::from_millis(20));
    let c1 = HostClock::host_tsc();
    let ns = t0.elapsed().as_nanos().max(1);
    (u128::from(c1.wrapping_sub(c0)) * 1_000_000 / ns) as u64
}
