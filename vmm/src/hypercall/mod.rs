//! Hypercall decoding and dispatch.
//!
//! The guest's stub leaves the hypercall number in the port-I/O data and the arguments in
//! rdi, rsi, rdx, r10, r8, r9. Every argument is hostile: guest pointers are read through the
//! guest's current tables ([`GuestRam::read_virt`]), counts are walked element by element with a
//! bounds check each (a wild count stops at the first unreadable element with -EFAULT), and
//! numbers we do not serve return -ENOSYS (reported once per number, for the first
//! [`UNSUPPORTED_NAMED`] numbers; the rest are counted).
//!
//! Batches (mmu_update, mmuext_op, multicall) are preempted as on Xen: once an exit has served
//! [`PREEMPT_BUDGET`] elements, the call returns a [`Continuation`] and vcpu.rs re-enters the
//! guest at the stub with the continuation's arguments, so one exit stays short whatever the
//! count.

mod console;
pub(crate) mod fake_domain;
pub mod grant_table;
mod memory_op;
mod mmu;
mod multicall;
pub mod physdev;
pub mod platform;
mod record;
mod sched;
#[cfg(test)]
pub(crate) mod testenv;
mod vcpu_op;
mod version;

use crate::logging::EventLog;
use crate::memory::GuestRam;
use crate::pv::cpuid::CpuidTable;
use crate::pv::xen_area::XenLayout;
use crate::pv::{CpuImage, PvState, Vcpu};
use crate::ratelimit::{BoundedSet, Seen};
use crate::summary::Stats;
use crate::tlb::{Flush, Tlb};
use pagetable_validator::abi::hypercall::Hypercall;
use pagetable_validator::abi::{domid, errno};
use pagetable_validator::Mfn;
use pagetable_validator::Validator;
use std::io::Write;

/// Xen's `guest_handle_okay` for a 64-bit PV guest: only the start address is checked — it must
/// not lie in the non-canonical hole or Xen's area (`__addr_ok`). Checked before anything else.
pub fn handle_okay(addr: u64) -> bool {
    !((1u64 << 47)..pagetable_validator::abi::x86::HYPERVISOR_VIRT_END).contains(&addr)
}

/// Xen's negative error value for `e` (positive errno).
pub const fn err(e: i64) -> i64 {
    -e
}

/// State of one hypercall exit, shared by nested multicall entries.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// CR3 (guest-physical address of the L4) used to translate guest pointers.
    pub cr3: u64,
    pub rip: u64,
    /// What the stub must flush on the way back (see `tlb.rs`).
    pub flush: Flush,
    /// SCHEDOP_shutdown reason, once the guest asked.
    pub shutdown: Option<u32>,
    /// Set when the top-level hypercall was preempted: re-enter it with these arguments.
    pub continuation: Option<Continuation>,
    /// Batch elements served in this exit (all batches, nested ones included).
    work: u32,
    in_multicall: bool,
}

/// Batch elements served per exit before a batch is preempted. Xen preempts when a softirq or
/// event is pending (`hypercall_preempt_check`); we preempt after a fixed amount of work so a
/// huge batch cannot keep the VMM in one exit. Smaller than the guest's 512-entry direct-map
/// batches, so real runs take the continuation path.
pub const PREEMPT_BUDGET: u32 = 256;

/// Distinct unsupported (hypercall, sub-command) pairs reported by name on stderr.
pub const UNSUPPORTED_NAMED: usize = 64;

/// Xen's `hypercall_create_continuation`: the hypercall re-executes with these arguments
/// (rdi, rsi, rdx, r10, r8, r9; the ones Xen's format string does not name are unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Continuation {
    pub nr: u64,
    pub args: [u64; 6],
}

impl Ctx {
    /// Adds a flush requirement.
    pub fn flush(&mut self, f: Flush) {
        self.flush = self.flush.add(f);
    }

    pub fn new(cr3: u64, rip: u64) -> Self {
        Ctx {
            cr3,
            rip,
            flush: Flush::None,
            shutdown: None,
            continuation: None,
            work: 0,
            in_multicall: false,
        }
    }

    /// Xen's `i && hypercall_preempt_check()`: element `i` of a batch may be deferred to a
    /// continuation once this exit's budget is spent, never the first (so every entry into a
    /// batch makes progress).
    fn preempt_check(&self, i: u64) -> bool {
        i != 0 && self.work >= PREEMPT_BUDGET
    }

    /// Accounts for one batch element served.
    fn worked(&mut self) {
        self.work = self.work.saturating_add(1);
    }

    /// Xen's `hypercall_create_continuation(nr, ...)`: records the arguments to re-enter with
    /// and returns what Xen returns (the hypercall number). `set` gives (index, value) pairs;
    /// every other argument keeps its value from `args`.
    pub(crate) fn create_continuation(
        &mut self,
        nr: u64,
        mut args: [u64; 6],
        set: &[(usize, u64)],
    ) -> i64 {
        for &(k, v) in set {
            args[k] = v;
        }
        self.continuation = Some(Continuation { nr, args });
        nr as i64
    }
}

/// The last top-level hypercall, for crash reports.
#[derive(Debug, Clone, Copy)]
pub struct LastCall {
    pub call: Hypercall,
    pub args: [u64; 6],
    pub rc: i64,
}

impl std::fmt::Display for LastCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.call.name() {
            Some(name) => write!(f, "{name}({})", self.call.nr())?,
            None => write!(f, "{}", self.call)?,
        }
        write!(
            f,
            " ({:#x}, {:#x}, {:#x}, {:#x}, {:#x}) = {}",
            self.args[0], self.args[1], self.args[2], self.args[3], self.args[4], self.rc
        )
    }
}

/// The hypervisor side of one domain: memory, validator, vCPU, logs and counters.
pub struct Hypervisor {
    pub ram: GuestRam,
    pub validator: Validator,
    /// The domain's one vCPU (PV state + register image); `Vcpu` is per-vCPU by design.
    pub vcpu: Vcpu,
    /// Where the Xen area is.
    pub xen: XenLayout,
    /// The CPUID the vCPU's hardware reports (the base of the PV policy).
    pub cpuid: CpuidTable,
    /// A flush the guest must see before it runs again (done by the ring-0 trampoline).
    pub pending_flush: Flush,
    /// VA of the kernel's hypercall page (HYPERCALL_PAGE note), if it has one.
    pub hypercall_page: Option<u64>,
    /// Whether this host's KVM reports port-I/O exits with RIP past the instruction (learned
    /// from the first hypercall through the page).
    pub io_rip_after: Option<bool>,
    /// TLB coherence state across exits.
    pub tlb: Tlb,
    pub log: EventLog,
    pub stats: Stats,
    console: Box<dyn Write>,
    /// (hypercall, sub-command) pairs already reported as unsupported (bounded: a guest can
    /// try 2^64 numbers).
    unsupported_seen: BoundedSet<(u64, u64)>,
    pub last: Option<LastCall>,
    /// SCHEDOP_shutdown_code reason, reported if the guest then dies without a shutdown.
    pub shutdown_code: Option<u32>,
    /// The domain's grant table (grant_table.rs).
    pub gnttab: grant_table::GrantTable,
    /// PIRQs, PCI devices, I/O bitmap (physdev.rs).
    pub physdev: physdev::Physdev,
    /// What platform_op changed (platform.rs).
    pub platform: platform::Platform,
    /// Xen's free heap and dom0's released frames (`memory_op`).
    pub(crate) mem: memory_op::Reservation,
    /// Event channels (pv/event_channel.rs).
    pub events: crate::pv::event_channel::EventChannels,
    /// PV time, timers, block/poll state, runstate (pv/time.rs).
    pub time: crate::pv::time::PvTime,
    /// `--frame-map`: sees every validator event, keeps the frame table at the first refusal.
    pub frame_map: Option<crate::frame_map::FrameMap>,
}

impl Hypervisor {
    pub fn new(
        ram: GuestRam,
        validator: Validator,
        xen: XenLayout,
        cpuid: CpuidTable,
        log: EventLog,
        console: Box<dyn Write>,
    ) -> Self {
        // vCPU 0's vcpu_info is the first entry of shared_info.
        let vcpu_info = xen.shared_info_mfn() << 12;
        let mut validator = validator;
        // grant_table_init: the first shared frame exists (and is shared) from the start.
        validator.share_xen_frame(Mfn(xen.gnttab_shared_mfn(0)));
        Hypervisor {
            ram,
            validator,
            vcpu: Vcpu {
                id: 0,
                pv: PvState::new(vcpu_info),
                cpu: CpuImage::default(),
            },
            xen,
            cpuid,
            pending_flush: Flush::None,
            hypercall_page: None,
            io_rip_after: None,
            tlb: Tlb::default(),
            log,
            stats: Stats::default(),
            console,
            unsupported_seen: BoundedSet::new(UNSUPPORTED_NAMED),
            last: None,
            shutdown_code: None,
            gnttab: grant_table::GrantTable::default(),
            physdev: physdev::Physdev::default(),
            platform: platform::Platform::default(),
            mem: memory_op::Reservation::default(),
            events: Default::default(),
            time: Default::default(),
            frame_map: None,
        }
    }

    /// Serves one top-level hypercall; returns the value for rax. When it was preempted,
    /// `ctx.continuation` holds the arguments to re-enter it with (see vcpu.rs).
    pub fn hypercall(&mut self, ctx: &mut Ctx, nr: u64, args: [u64; 6]) -> i64 {
        let rc = self.dispatch(ctx, nr, args);
        // A continued call is counted once, when its last part finishes.
        if ctx.continuation.is_some() {
            self.stats.continuations += 1;
        } else {
            self.stats.count(Hypercall::from_nr(nr));
        }
        let call = LastCall {
            call: Hypercall::from_nr(nr),
            args,
            rc,
        };
        log::trace!("{call}");
        self.last = Some(call);
        rc
    }

    /// Serves one call (top-level or a multicall entry); the caller counts it once finished.
    fn dispatch(&mut self, ctx: &mut Ctx, nr: u64, a: [u64; 6]) -> i64 {
        use Hypercall as H;
        match Hypercall::from_nr(nr) {
            H::MmuUpdate => self.mmu_update(ctx, a),
            H::UpdateVaMapping => self.update_va_mapping(ctx, a[0], a[1], a[2]),
            H::MmuextOp => self.mmuext_op(ctx, a),
            H::Multicall => self.multicall(ctx, a),
            H::MemoryOp => self.memory_op(ctx, a),
            H::ConsoleIo => self.console_io(ctx, a),
            H::SchedOp => self.sched_op(ctx, a[0], a[1]),
            H::SchedOpCompat => self.sched_op_compat(ctx, a[0], a[1]),
            H::XenVersion => self.xen_version(ctx, a[0], a[1]),
            H::SetTrapTable => self.set_trap_table(ctx, a),
            H::SetGdt => self.set_gdt(ctx, a[0], a[1]),
            H::StackSwitch => self.stack_switch(a[0], a[1]),
            H::SetCallbacks => self.set_callbacks(a),
            H::FpuTaskswitch => self.fpu_taskswitch(a[0]),
            H::SetDebugreg => self.set_debugreg(a[0], a[1]),
            H::GetDebugreg => self.get_debugreg(a[0]),
            H::UpdateDescriptor => self.update_descriptor(ctx, a[0], a[1]),
            H::VmAssist => self.vm_assist(a[0], a[1]),
            H::SetSegmentBase => self.set_segment_base(a[0], a[1]),
            H::CallbackOp => self.callback_op(ctx, a[0], a[1]),
            H::EventChannelOp => self.event_channel_op(ctx, a[0], a[1]),
            H::EventChannelOpCompat => self.event_channel_op_compat(ctx, a[0]),
            H::VcpuOp => self.vcpu_op(ctx, a[0], a[1], a[2]),
            H::SetTimerOp => self.set_timer_op(a[0]),
            H::GrantTableOp => self.grant_table_op(ctx, a),
            H::PhysdevOp => self.physdev_op(ctx, a[0], a[1]),
            H::PlatformOp => self.platform_op(ctx, a[0]),
            _ => self.unsupported(ctx, nr, None),
        }
    }

    /// -ENOSYS for a hypercall (or sub-command) we do not serve; reported once per number (the
    /// first [`UNSUPPORTED_NAMED`] distinct numbers; after that one line says so and the rest
    /// are only counted).
    pub(crate) fn unsupported(&mut self, ctx: &Ctx, nr: u64, sub: Option<u64>) -> i64 {
        let rc = err(errno::ENOSYS);
        let seen = self.unsupported_seen.insert((nr, sub.unwrap_or(u64::MAX)));
        self.stats.unsupported += 1;
        self.stats.unsupported_named = self.unsupported_seen.len() as u64;
        self.stats.unsupported_untracked = self.unsupported_seen.untracked;
        if seen == Seen::Untracked && self.unsupported_seen.untracked == 1 {
            self.log.message(&format!(
                "vmm: more than {UNSUPPORTED_NAMED} distinct unsupported hypercalls/sub-commands: \
                 further ones are counted, not named"
            ));
        }
        let first = seen == Seen::New;
        let call = Hypercall::from_nr(nr);
        let what = match sub {
            Some(s) => format!("{call} sub-command {s}"),
            None => format!("hypercall {nr}"),
        };
        let why = format!("{what} not supported (reported once)");
        let name = call.name().unwrap_or("hypercall");
        self.log.vmm_refusal(name, rc, &why, ctx.rip, first);
        rc
    }

    /// Xen's `get_pg_owner` for us, dom0 and the only domain: DOMID_SELF names us; naming
    /// ourselves by id is refused like Xen does ("Cannot specify itself as foreign domain");
    /// every other domain (and Xen's DOMID_IO/DOMID_XEN, which we do not model) gives -ESRCH.
    fn check_domid(&mut self, ctx: &Ctx, name: &str, d: u64) -> Result<(), i64> {
        let d = d as u16;
        if d == domid::DOMID_SELF {
            Ok(())
        } else {
            let rc = err(errno::ESRCH);
            let why = format!("domid {d:#x} is not this domain");
            self.log.vmm_refusal(name, rc, &why, ctx.rip, true);
            Err(rc)
        }
    }

    /// A guest pointer the VMM could not read or write: -EFAULT, logged.
    pub(crate) fn efault(
        &mut self,
        ctx: &Ctx,
        name: &str,
        what: &str,
        f: crate::memory::Fault,
    ) -> i64 {
        self.stats.efaults += 1;
        let rc = err(errno::EFAULT);
        log::info!("{name}: {what}: {f} -> -EFAULT");
        self.log.record(crate::log_record::VmmRecord::Efault {
            hypercall: name.to_string(),
            what: what.to_string(),
            fault: f.to_string(),
            rip: ctx.rip,
        });
        rc
    }
}
