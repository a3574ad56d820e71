//! One vCPU exit, decoded and handled: the PV hypervisor's entry points (Xen's `entry.S`
//! dispatch) as a pure function of the exit and the vCPU's register image, so it can be
//! tested with fake exits and no KVM. vcpu/ turns KVM's exits into [`Exit`]s, loads the
//! register image before [`Hypervisor::handle_exit`] and applies the image after.

use crate::hypercall::{Ctx, Hypervisor};
use crate::pv::emul_priv_op::Emulated;
use crate::pv::traps::{
    self, DomainCrash, GuestEvent, StubFrame, X86_EXC_BP, X86_EXC_DF, X86_EXC_GP, X86_EXC_NM,
    X86_EXC_PF, X86_EXC_UD,
};
use crate::pv::xen_area::{has_error_code, port};

/// #PF error code bits: a write; a reserved bit was set in a paging entry.
const PFEC_WRITE: u32 = 1 << 1;
const PFEC_RSVD: u32 = 1 << 3;
use pagetable_validator::abi::hypercall as hc;
use pagetable_validator::abi::shinfo;
use pagetable_validator::abi::x86 as xen;

/// A vCPU exit, as the PV layer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `out` of a 32-bit value to the hypercall port (only the hypercall page's stubs do it).
    HypercallPort,
    /// The `out` of a ring-0 stub of the Xen area (`port` says which).
    Stub(u16),
    /// Other port I/O: the hypercall port opened in the I/O bitmap, used otherwise.
    Io {
        port: u16,
        write: bool,
    },
    Hlt,
    TripleFault,
    /// KVM could not run or emulate an instruction.
    Internal,
    FailEntry(u64),
    Mmio(u64),
    Other(String),
}

/// What the vCPU loop does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Apply the register image and run the guest.
    Resume,
    /// SCHEDOP_shutdown with this reason.
    Shutdown(u32),
    /// Xen's `domain_crash`: the guest did something Xen kills a domain for.
    Crash(String),
    /// The VMM stopped the guest (an exit that no PV guest can cause legitimately).
    Stop(String),
}

impl From<DomainCrash> for Action {
    fn from(c: DomainCrash) -> Self {
        Action::Crash(c.0)
    }
}

impl Hypervisor {
    /// Handles one exit; the vCPU's register image is loaded and is changed in place.
    pub fn handle_exit(&mut self, exit: Exit) -> Action {
        // A stub port written from anywhere but the stubs is the guest's own port I/O.
        let exit = match exit {
            Exit::Stub(port) if !self.xen.is_stub_rip(self.vcpu.cpu.regs.rip) => {
                Exit::Io { port, write: true }
            }
            e => e,
        };
        let r = match exit {
            Exit::HypercallPort => self.hypercall_port(),
            Exit::Stub(p) if (port::VECTOR_BASE..port::VECTOR_OTHER).contains(&p) => {
                self.exception((p - port::VECTOR_BASE) as u8)
            }
            Exit::Stub(port::SYSCALL) => self.syscall(false),
            Exit::Stub(port::SYSCALL32) => self.syscall(true),
            Exit::Stub(port::SYSENTER) => {
                self.vcpu
                    .cpu
                    .set_guest_segments(xen::FLAT_RING3_CS64, xen::FLAT_RING3_SS64);
                self.sysenter_from_user().map(|()| Action::Resume)
            }
            Exit::Stub(p) => Ok(Action::Stop(format!(
                "ring-0 stub exit on port {p:#x} outside a trampoline run"
            ))),
            Exit::Io { port, write } if self.vcpu.cpu.cpl() == 3 => self.guest_port_io(port, write),
            Exit::Io { port, write } => Ok(Action::Stop(format!(
                "port I/O ({}) on port {port:#x} from ring 0",
                if write { "out" } else { "in" }
            ))),
            Exit::Hlt => Ok(Action::Stop("hlt outside the guest (ring 0)".into())),
            Exit::TripleFault => Ok(Action::Stop(
                "triple fault: an exception while the VMM's ring-0 stubs delivered one".into(),
            )),
            Exit::Internal => Ok(Action::Stop(
                "KVM internal error (the instruction could not be emulated)".into(),
            )),
            Exit::FailEntry(r) => Ok(Action::Stop(format!(
                "KVM entry failure, hardware reason {r:#x}"
            ))),
            Exit::Mmio(a) => Ok(Action::Stop(format!(
                "access to guest-physical {a:#x} outside RAM"
            ))),
            Exit::Other(w) => Ok(Action::Stop(format!("unexpected exit {w}"))),
        };
        match r {
            Ok(Action::Resume) => match self.deliver_events() {
                Ok(()) => Action::Resume,
                Err(c) => c.into(),
            },
            Ok(a) => a,
            Err(c) => c.into(),
        }
    }

    /// A hypercall through the hypercall page's `out` (guest kernel mode only).
    fn hypercall_port(&mut self) -> Result<Action, DomainCrash> {
        if self.vcpu.cpu.cpl() != 3 {
            return Ok(Action::Stop("hypercall port written from ring 0".into()));
        }
        if !self.vcpu.pv.kernel_mode {
            // Guest user mode has no hypercalls: the `out` is an I/O instruction it may not run.
            return self.general_protection(0);
        }
        // Only the hypercall page's stubs make hypercalls this way: the `out` sits at a fixed
        // offset of its 32-byte stub. Whether KVM reports RIP at the `out` or just past it
        // differs between hosts; both identify the stub.
        let rip = self.vcpu.cpu.regs.rip;
        let Some(hp) = self.hypercall_page else {
            return self.general_protection(0);
        };
        if !(hp..hp + 4096).contains(&rip) {
            return self.general_protection(0);
        }
        let stub = rip & !(pagetable_validator::abi::hypercall::STUB_SIZE - 1);
        let out_at = stub + crate::builder::stub_out_offset((stub - hp) / 32);
        let next = out_at + 2;
        if rip != out_at && rip != next {
            return self.guest_port_io(crate::builder::HYPERCALL_PORT, true);
        }
        self.io_rip_after = Some(rip == next);
        Ok(self.serve_hypercall(next, stub))
    }

    /// Port I/O the TSS bitmap let through (the few ports the VMM's own exits use) that is not
    /// the VMM's: for the guest it is an I/O instruction like any other, which Xen emulates or
    /// answers with #GP. KVM reports RIP at the instruction or just past it, depending on the
    /// host (learned from the first hypercall); rewind to the instruction first.
    fn guest_port_io(&mut self, port: u16, write: bool) -> Result<Action, DomainCrash> {
        let rip = self.vcpu.cpu.regs.rip;
        let cr3 = self.vcpu.cpu.sregs.cr3;
        let is_io_at = |at: u64| -> bool {
            let mut b = [0u8; 4];
            let n = (rip + 4 - at) as usize;
            if self.ram.read_virt(cr3, at, &mut b[..n.min(4)]).is_err() {
                return false;
            }
            let mut d = iced_x86::Decoder::with_ip(64, &b[..n.min(4)], at, 0);
            let i = d.decode();
            let kind = if write {
                iced_x86::Mnemonic::Out
            } else {
                iced_x86::Mnemonic::In
            };
            let imm_ok = i.op_count() < 2
                || !matches!(i.op0_kind(), iced_x86::OpKind::Immediate8)
                    && !matches!(i.op1_kind(), iced_x86::OpKind::Immediate8)
                || i.immediate8() as u16 == port;
            !i.is_invalid() && i.mnemonic() == kind && imm_ok
        };
        let ends_here = |at: u64| -> bool {
            let mut b = [0u8; 4];
            let n = (rip - at) as usize;
            if self.ram.read_virt(cr3, at, &mut b[..n]).is_err() {
                return false;
            }
            let mut d = iced_x86::Decoder::with_ip(64, &b[..n], at, 0);
            let i = d.decode();
            !i.is_invalid() && i.next_ip() == rip && is_io_at(at)
        };
        let after = (1..=4).map(|k| rip - k).find(|&at| ends_here(at));
        let start = match (self.io_rip_after, after) {
            (Some(true), Some(a)) | (None, Some(a)) if !is_io_at(rip) => a,
            (Some(true), Some(a)) => a,
            _ => rip,
        };
        self.vcpu.cpu.regs_mut().rip = start;
        self.general_protection(0)
    }

    /// SYSCALL: a hypercall in guest kernel mode (as Xen's own 64-bit hypercall page does),
    /// a bounce to the guest's syscall callback in user mode.
    fn syscall(&mut self, compat: bool) -> Result<Action, DomainCrash> {
        log::debug!(
            "syscall{} from {:#x} ({} mode)",
            if compat { "32" } else { "" },
            self.vcpu.cpu.regs.rcx,
            if self.vcpu.pv.kernel_mode {
                "kernel"
            } else {
                "user"
            }
        );
        self.vcpu
            .cpu
            .set_guest_segments(xen::FLAT_KERNEL_CS, xen::FLAT_KERNEL_SS);
        let r = self.vcpu.cpu.regs;
        if !self.vcpu.pv.kernel_mode || compat {
            self.syscall_from_user(compat)?;
            return Ok(Action::Resume);
        }
        // Back like SYSRET: rip = rcx, rflags = r11 (IF forced, IOPL cleared).
        {
            let regs = self.vcpu.cpu.regs_mut();
            regs.rflags = (r.r11 & !(crate::pv::flags::IOPL | crate::pv::flags::VM))
                | crate::pv::flags::IF
                | crate::pv::flags::MBS;
        }
        Ok(self.serve_hypercall(r.rcx, r.rcx.wrapping_sub(2)))
    }

    /// Serves the hypercall in rax with the register arguments; the guest continues at
    /// `next`, or re-executes the entering instruction at `again` for a continuation.
    fn serve_hypercall(&mut self, next: u64, again: u64) -> Action {
        let r = self.vcpu.cpu.regs;
        let nr = r.rax;
        if nr == hc::IRET {
            return match self.do_iret() {
                Ok(()) => Action::Resume,
                Err(c) => c.into(),
            };
        }
        let mut ctx = Ctx::new(self.vcpu.cpu.sregs.cr3, again);
        let args = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9];
        let rc = self.hypercall(&mut ctx, nr, args);
        self.pending_flush = self.pending_flush.add(ctx.flush);
        if ctx.cr3 != self.vcpu.cpu.sregs.cr3 && self.vcpu.pv.kernel_mode {
            self.vcpu.cpu.sregs_mut().cr3 = ctx.cr3;
        }
        let regs = self.vcpu.cpu.regs_mut();
        match ctx.continuation {
            Some(c) => {
                // Xen's continuation: same hypercall, new arguments, entering instruction again.
                [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = c.args;
                regs.rax = c.nr;
                regs.rip = again;
            }
            None => {
                regs.rax = rc as u64;
                regs.rip = next;
            }
        }
        match ctx.shutdown {
            Some(reason) => Action::Shutdown(reason),
            None => Action::Resume,
        }
    }

    /// An exception from CPL 3, via a ring-0 vector stub.
    fn exception(&mut self, vector: u8) -> Result<Action, DomainCrash> {
        let rsp = self.vcpu.cpu.regs.rsp;
        let Some(f) = traps::read_stub_frame(self, vector, rsp) else {
            return Ok(Action::Stop(format!(
                "exception stub with a ring-0 stack pointer {rsp:#x} outside the Xen area"
            )));
        };
        if f.cs & 3 != 3 {
            return Ok(Action::Stop(format!(
                "exception {} ({}) at ring 0, rip {:#x}: a fault in the VMM's own stubs",
                f.vector,
                traps::vector_name(f.vector),
                f.rip
            )));
        }
        log::debug!(
            "exception {} ({}) ec {:#x} at {:#x} cs {:#x} rsp {:#x} cr2 {:#x}",
            f.vector,
            traps::vector_name(f.vector),
            f.error_code,
            f.rip,
            f.cs,
            f.rsp,
            self.vcpu.cpu.sregs.cr2
        );
        self.restore_from_stub(&f);
        let ec = f.error_code;
        match f.vector {
            X86_EXC_GP => self.general_protection(ec),
            X86_EXC_UD => self.invalid_op(),
            X86_EXC_NM => self.device_not_available().map(|()| Action::Resume),
            X86_EXC_PF => {
                let cr2 = self.vcpu.cpu.sregs.cr2;
                if log::log_enabled!(log::Level::Debug) {
                    let mut t = self.vcpu.cpu.sregs.cr3 & pagetable_validator::pte::PTE_ADDR_MASK;
                    for level in (1..=4u32).rev() {
                        let slot = pagetable_validator::pte::table_index(cr2, level) as u64;
                        let e = self.ram.read_u64_phys(t + slot * 8).unwrap_or(0);
                        log::debug!(
                            "  #PF walk L{level}[{slot}] @ {t:#x} = {e:#x} (efer {:#x})",
                            self.vcpu.cpu.sregs.efer
                        );
                        if e & 1 == 0 || (level == 2 && e & 0x80 != 0) {
                            break;
                        }
                        t = e & pagetable_validator::pte::PTE_ADDR_MASK;
                    }
                }
                if crate::pv::ptwr::is_ptwr_candidate(ec) && self.ptwr_fault(cr2) == Emulated::Yes {
                    return Ok(Action::Resume);
                }
                // This host refuses guest accesses to L4 slot 256 (not-present or reserved-bit
                // faults although our tables map the M2P there): emulate the read.
                if self.in_ro_mpt(cr2) {
                    if ec & PFEC_WRITE == 0 && self.emulate_ro_mpt_read(cr2) == Emulated::Yes {
                        return Ok(Action::Resume);
                    }
                    // As Xen: a fault on a present read-only page.
                    return self.inject(X86_EXC_PF, Some((ec & !PFEC_RSVD) | 1), Some(cr2));
                }
                self.inject(X86_EXC_PF, Some(ec), Some(cr2))
            }
            X86_EXC_DF => Ok(Action::Crash("double fault in the guest".into())),
            2 | 18 => Ok(Action::Stop(format!(
                "{} delivered to the guest's vCPU",
                traps::vector_name(f.vector)
            ))),
            X86_EXC_BP => self.inject(X86_EXC_BP, None, None),
            v if v < 32 => self.inject(v, has_error_code(v).then_some(ec), None),
            v => Ok(Action::Stop(format!("interrupt vector {v} at CPL 3"))),
        }
    }

    fn inject(
        &mut self,
        vector: u8,
        error_code: Option<u32>,
        cr2: Option<u64>,
    ) -> Result<Action, DomainCrash> {
        self.inject_event(GuestEvent::Exception {
            vector,
            error_code,
            cr2,
        })?;
        Ok(Action::Resume)
    }

    /// Whether `va` is in the read-only M2P and the current tables map it there (slot 256).
    fn in_ro_mpt(&self, va: u64) -> bool {
        use pagetable_validator::abi::x86::{MACH2PHYS_VIRT_END, MACH2PHYS_VIRT_START};
        let slot = (self.vcpu.cpu.sregs.cr3 & pagetable_validator::pte::PTE_ADDR_MASK) + 256 * 8;
        (MACH2PHYS_VIRT_START..MACH2PHYS_VIRT_END).contains(&va)
            && self.ram.read_u64_phys(slot) == Some(self.xen.ro_mpt_l4e())
    }

    /// The guest registers as the exception found them (the stub ran on the ring-0 stack).
    fn restore_from_stub(&mut self, f: &StubFrame) {
        let regs = self.vcpu.cpu.regs_mut();
        regs.rip = f.rip;
        regs.rsp = f.rsp;
        regs.rflags = f.rflags;
        self.vcpu.cpu.set_guest_segments(f.cs as u16, f.ss as u16);
    }

    /// `do_general_protection`: `int n` through a DPL-0 gate, emulated privileged
    /// instructions, else #GP to the guest.
    fn general_protection(&mut self, ec: u32) -> Result<Action, DomainCrash> {
        if ec & 3 == 2 {
            return self.soft_int((ec >> 3) as u8);
        }
        if ec == 0 && self.emulate_privileged_op()? == Emulated::Yes {
            return Ok(Action::Resume);
        }
        self.inject(X86_EXC_GP, Some(ec), None)
    }

    /// `int n` the trap table permits: bounced with the return address after the `int`;
    /// otherwise #GP(n << 3 | 2), as the CPU reports a DPL-0 gate.
    fn soft_int(&mut self, vector: u8) -> Result<Action, DomainCrash> {
        let dpl = self.vcpu.pv.trap_ctxt[usize::from(vector)].flags & 3;
        if traps::permit_softint(dpl, self.vcpu.pv.kernel_mode) {
            self.vcpu.cpu.regs_mut().rip += 2;
            self.inject_event(GuestEvent::SoftInt { vector })?;
            return Ok(Action::Resume);
        }
        self.inject(X86_EXC_GP, Some((u32::from(vector) << 3) | 2), None)
    }

    /// #UD: this host's KVM raises #UD for `int n` (n != 3) at CPL 3 instead of consulting
    /// the IDT (docs/architecture.md, host quirks): treat `cd nn` as the software interrupt.
    /// Then Xen's forced-emulation prefix; else #UD to the guest.
    fn invalid_op(&mut self) -> Result<Action, DomainCrash> {
        let rip = self.vcpu.cpu.regs.rip;
        let mut b = [0u8; 2];
        if self
            .ram
            .read_virt(self.vcpu.cpu.sregs.cr3, rip, &mut b)
            .is_ok()
            && b[0] == 0xcd
        {
            return self.soft_int(b[1]);
        }
        if self.emulate_invalid_op()? == Emulated::Yes {
            return Ok(Action::Resume);
        }
        self.inject(X86_EXC_UD, None, None)
    }

    /// Xen's `test_guest_events` on the way back to the guest: a pending, unmasked event
    /// upcall enters the event callback with events masked.
    pub fn deliver_events(&mut self) -> Result<(), DomainCrash> {
        let vi = self.vcpu.pv.vcpu_info_gpa;
        let pending = self.ram.read_phys_u8(vi + shinfo::VI_UPCALL_PENDING);
        let masked = self.ram.read_phys_u8(vi + shinfo::VI_UPCALL_MASK);
        if pending.unwrap_or(0) == 0 || masked.unwrap_or(1) != 0 {
            return Ok(());
        }
        let eip = self.vcpu.pv.callbacks.event;
        if eip == 0 {
            return Ok(());
        }
        self.create_bounce_frame(traps::Bounce {
            eip,
            error_code: None,
            mask_events: true,
        })
    }
}
