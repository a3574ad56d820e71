//! The vCPU run loop: hypercall exits are decoded and served; everything else stops the guest
//! with a report (RIP, CR2, CR3, the last hypercall and the nearest guest symbol).
//!
//! At every exit we also check the property the whole design rests on: the guest runs on a
//! validated L4 (CR3 is the validator's current base and has type L4) with CR0.WP set. Then the
//! CPU itself refuses guest writes through the read-only mappings of pagetables; a ring-0 guest
//! could only escape with privileged instructions, and this check catches the ones that matter.

use crate::arch::{Machine, CR0_WP};
use crate::builder::{CONTINUATION_TAIL, HYPERCALL_PORT};
use crate::emulate;
use crate::hypercall::{Ctx, Hypervisor, LastCall};
use crate::loader::elf::KernelImage;
use crate::tlb::Flush;
use kvm_ioctls::VcpuExit;
use pagetable_validator::abi;
use pagetable_validator::pte::PTE_ADDR_MASK;
use pagetable_validator::PageType;
use std::fmt;
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
    pub symbol: Option<String>,
    pub last: Option<LastCall>,
}

impl fmt::Display for StopReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "guest stopped: {}", self.what)?;
        write!(
            f,
            "  RIP {:#018x}{}  RSP {:#018x}  CR2 {:#018x}  CR3 {:#018x}",
            self.rip,
            self.symbol
                .as_ref()
                .map(|s| format!(" <{s}>"))
                .unwrap_or_default(),
            self.rsp,
            self.cr2,
            self.cr3
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
    /// The VMM stopped the guest.
    Stopped(Box<StopReport>),
}

enum Exit {
    Hypercall(u32),
    Port(&'static str, u16),
    Hlt,
    TripleFault,
    Internal,
    FailEntry(u64),
    Mmio(u64),
    Other(String),
}

pub fn run(
    m: &mut Machine,
    hv: &mut Hypervisor,
    img: &KernelImage,
    hypercall_page: u64,
) -> Result<Outcome, VcpuError> {
    loop {
        let exit = match m.vcpu.run() {
            Ok(VcpuExit::IoOut(port, data)) if port == HYPERCALL_PORT && data.len() == 4 => {
                Exit::Hypercall(u32::from_le_bytes(data.try_into().expect("4 bytes")))
            }
            Ok(VcpuExit::IoOut(port, _)) => Exit::Port("out", port),
            Ok(VcpuExit::IoIn(port, data)) => {
                data.fill(0xff);
                Exit::Port("in", port)
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
            Ok(VcpuExit::Intr) => continue,
            Ok(other) => Exit::Other(format!("{other:?}")),
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => continue,
            Err(e) => return Err(VcpuError::Run(e)),
        };
        hv.stats.exits += 1;
        let sregs = m.vcpu.get_sregs().map_err(regs_err("get sregs"))?;
        let cr3 = sregs.cr3 & PTE_ADDR_MASK;

        let stop = |what: String, hv: &Hypervisor, m: &Machine| -> Result<Outcome, VcpuError> {
            let regs = m.vcpu.get_regs().map_err(regs_err("get regs"))?;
            Ok(Outcome::Stopped(Box::new(StopReport {
                what,
                rip: regs.rip,
                rsp: regs.rsp,
                cr2: sregs.cr2,
                cr3: sregs.cr3,
                symbol: img.symbolize(regs.rip),
                last: hv.last,
            })))
        };

        // The protection invariant, at every exit.
        if sregs.cr0 & CR0_WP == 0 {
            return stop(
                "CR0.WP was cleared: the guest could write through read-only pagetable mappings"
                    .into(),
                hv,
                m,
            );
        }
        let base = hv.validator.current_base();
        if base != Some(cr3 >> 12) || hv.validator.page_type(cr3 >> 12) != PageType::L4 {
            return stop(
                format!(
                    "CR3 {:#x} is not the validated L4 base ({}): the guest loaded CR3 itself",
                    sregs.cr3,
                    base.map(|b| format!("mfn {b:#x}"))
                        .unwrap_or_else(|| "none".into())
                ),
                hv,
                m,
            );
        }

        match exit {
            Exit::Hypercall(nr) => {
                let mut regs = m.vcpu.get_regs().map_err(regs_err("get regs"))?;
                if !(hypercall_page..hypercall_page + 4096).contains(&regs.rip) {
                    return stop(format!("port I/O to the hypercall port outside the hypercall page (nr {nr})"), hv, m);
                }
                let mut ctx = Ctx::new(cr3, regs.rip);
                let args = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9];
                let rc = hv.hypercall(&mut ctx, nr as u64, args);
                regs.rax = rc as u64;
                // Xen's hypercall continuation: new arguments, and back into the stub (through
                // the continuation tail when the part served needs a flush first). The ABI
                // declares the argument registers clobbered; the VMM gets control back between
                // the parts of a long batch.
                if let Some(c) = ctx.continuation {
                    [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = c.args;
                    let stub = hypercall_page + c.nr * abi::hypercall::STUB_SIZE;
                    if ctx.flush == Flush::None {
                        regs.rip = stub;
                    } else {
                        regs.rip = hypercall_page + CONTINUATION_TAIL;
                        regs.rax = stub;
                    }
                }
                // The stub's tail: r11 > 0 reloads CR3 from rcx, r11 < 0 runs `invlpg [rcx]`.
                match ctx.flush {
                    Flush::None => regs.r11 = 0,
                    Flush::Page(va) => {
                        regs.r11 = u64::MAX;
                        regs.rcx = va;
                        hv.stats.invlpgs += 1;
                    }
                    Flush::Full => {
                        regs.r11 = 1;
                        regs.rcx = ctx.cr3;
                        hv.stats.cr3_reloads += 1;
                        hv.tlb.flushed_all();
                    }
                }
                m.vcpu.set_regs(&regs).map_err(regs_err("set regs"))?;
                // A killed VMM loses at most the records of the exit in progress.
                hv.log.flush();
                if let Some(reason) = ctx.shutdown {
                    return Ok(Outcome::Shutdown(reason));
                }
            }
            Exit::Port(dir, port) => {
                return stop(format!("privileged instruction: `{dir}` on port {port:#x} (PV guests have no I/O ports)"), hv, m)
            }
            Exit::Hlt => return stop("privileged instruction: hlt (PV guests block with sched_op)".into(), hv, m),
            Exit::TripleFault => {
                return stop(
                    "triple fault (an exception with no handler: PV guests get no IDT, so any fault ends here)".into(),
                    hv,
                    m,
                )
            }
            Exit::Internal => {
                // KVM's emulator gave up (typically an SSE instruction on a host without
                // hardware virtualization): execute it ourselves and go on.
                let mut regs = m.vcpu.get_regs().map_err(regs_err("get regs"))?;
                let mut fpu = m.vcpu.get_fpu().map_err(regs_err("get FPU"))?;
                match emulate::emulate(&hv.ram, cr3, &mut regs, &mut fpu, sregs.fs.base, sregs.gs.base) {
                    Ok(insn) => {
                        log::trace!("emulated {insn} at {:#x}", regs.rip);
                        hv.stats.emulated += 1;
                        m.vcpu.set_fpu(&fpu).map_err(regs_err("set FPU"))?;
                        m.vcpu.set_regs(&regs).map_err(regs_err("set regs"))?;
                    }
                    Err(emulate::EmuError::Unsupported(bytes)) => {
                        return stop(format!("KVM internal error (emulation failure) at instruction [{bytes}]"), hv, m)
                    }
                    Err(emulate::EmuError::Memory(f)) => {
                        return stop(format!("KVM internal error (emulation failure); emulating it faulted: {f}"), hv, m)
                    }
                }
            }
            Exit::FailEntry(r) => return stop(format!("KVM entry failure, hardware reason {r:#x}"), hv, m),
            Exit::Mmio(addr) => return stop(format!("access to guest-physical {addr:#x} outside RAM"), hv, m),
            Exit::Other(what) => return stop(format!("unexpected exit {what}"), hv, m),
        }
    }
}
