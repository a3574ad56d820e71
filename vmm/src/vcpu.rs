//! The vCPU loop: KVM_RUN, turn KVM's exit into an [`Exit`], load the register image, let
//! [`Hypervisor::handle_exit`] decide, run the ring-0 sync trampoline when stores or a flush
//! are pending, write the image back, repeat.
//!
//! The guest kernel runs at CPL 3 as on Xen: it cannot touch CR3, CR0, the IDT or the GDT,
//! and every pagetable frame is mapped read-only in every address space the validator
//! accepted, so the CPU enforces the rules between exits. What the VMM changes in guest page
//! tables from userspace reaches the hardware through ring-0 code (see pv/xen_area.rs).

use crate::arch::Machine;
use crate::builder::HYPERCALL_PORT;
use crate::exit::{Action, Exit};
use crate::hypercall::{Hypervisor, LastCall};
use crate::loader::elf::KernelImage;
use crate::pv::xen_area::{port, SyncFlush, XenLayout, SYNC_QUEUE_CAP};
use crate::tlb::Flush;
use kvm_bindings::kvm_segment;
use kvm_ioctls::VcpuExit;
use pagetable_validator::abi::x86 as xen;
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
}

/// One KVM_RUN, its exit as an [`Exit`] (None: run again, e.g. EINTR).
fn run_once(m: &mut Machine) -> Result<Option<Exit>, VcpuError> {
    Ok(Some(match m.vcpu.run() {
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
        Ok(VcpuExit::Intr) => return Ok(None),
        Ok(other) => Exit::Other(format!("{other:?}")),
        Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => return Ok(None),
        Err(e) => return Err(VcpuError::Run(e)),
    }))
}

fn load(m: &Machine, hv: &mut Hypervisor) -> Result<(), VcpuError> {
    let c = &mut hv.vcpu.cpu;
    c.regs = m.vcpu.get_regs().map_err(regs_err("get regs"))?;
    c.sregs = m.vcpu.get_sregs().map_err(regs_err("get sregs"))?;
    c.regs_dirty = false;
    c.sregs_dirty = false;
    Ok(())
}

fn store(m: &Machine, hv: &mut Hypervisor) -> Result<(), VcpuError> {
    let c = &mut hv.vcpu.cpu;
    if c.sregs_dirty {
        m.vcpu.set_sregs(&c.sregs).map_err(regs_err("set sregs"))?;
        c.sregs_dirty = false;
    }
    if c.regs_dirty {
        m.vcpu.set_regs(&c.regs).map_err(regs_err("set regs"))?;
        c.regs_dirty = false;
    }
    Ok(())
}

pub fn run(m: &mut Machine, hv: &mut Hypervisor, img: &KernelImage) -> Result<Outcome, VcpuError> {
    loop {
        let Some(exit) = run_once(m)? else { continue };
        hv.stats.exits += 1;
        load(m, hv)?;
        let report = |hv: &Hypervisor, what: String| {
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
        };
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
                    format!("domain crashed: {what}"),
                )));
            }
            Action::Stop(what) => {
                hv.log.flush();
                return Ok(Outcome::Stopped(report(
                    hv,
                    format!("guest stopped: {what}"),
                )));
            }
        }
        if hv.ram.has_touched() || hv.pending_flush != Flush::None {
            if let Err(what) = sync(m, hv)? {
                return Ok(Outcome::Stopped(report(
                    hv,
                    format!("guest stopped: {what}"),
                )));
            }
        }
        store(m, hv)?;
        // A killed VMM loses at most the records of the exit in progress.
        hv.log.flush();
    }
}

fn ring0_segments(s: &mut kvm_bindings::kvm_sregs) {
    let cs = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: xen::HYPERVISOR_CS,
        type_: 0xb,
        present: 1,
        dpl: 0,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    s.cs = cs;
    s.ss = kvm_segment {
        selector: xen::HYPERVISOR_DS32,
        type_: 3,
        l: 0,
        db: 1,
        ..cs
    };
}

/// Runs the ring-0 sync trampoline: re-stores every pagetable entry the VMM changed from
/// userspace (so a shadowing host sees it), then the flush the guest needs, then resumes the
/// guest's image. `Ok(Err(_))`: the trampoline did not come back as expected.
fn sync(m: &mut Machine, hv: &mut Hypervisor) -> Result<Result<(), String>, VcpuError> {
    let started = std::time::Instant::now();
    let r = sync_inner(m, hv);
    hv.stats.ring0_time += started.elapsed();
    r
}

fn sync_inner(m: &mut Machine, hv: &mut Hypervisor) -> Result<Result<(), String>, VcpuError> {
    let guest = hv.vcpu.cpu.clone();
    let touched = hv.ram.take_touched();
    let flush = std::mem::take(&mut hv.pending_flush);
    let l: &XenLayout = &hv.xen;
    let chunks: Vec<&[u64]> = if touched.is_empty() {
        vec![&[]]
    } else {
        touched.chunks(SYNC_QUEUE_CAP).collect()
    };
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        for (k, &gpa) in chunk.iter().enumerate() {
            let q = l
                .pd_gpa(l.queue_va() + k as u64 * 8)
                .expect("queue inside the area");
            hv.ram.write_u64_phys(q, XenLayout::directmap_va(gpa));
        }
        let (kind, va) = match (i == last, flush) {
            (true, Flush::Page(va)) => (SyncFlush::Page, va),
            (true, Flush::Full) => (SyncFlush::Full, 0),
            _ => (SyncFlush::None, 0),
        };
        let mut regs = guest.regs;
        regs.rsi = l.queue_va();
        regs.rcx = chunk.len() as u64;
        regs.rdx = kind as u64;
        regs.rdi = va;
        regs.rip = l.sync_entry();
        regs.rsp = l.stack_top();
        regs.rflags = 0x2;
        let mut sregs = guest.sregs;
        ring0_segments(&mut sregs);
        m.vcpu.set_sregs(&sregs).map_err(regs_err("set sregs"))?;
        m.vcpu.set_regs(&regs).map_err(regs_err("set regs"))?;
        let exit = loop {
            if let Some(e) = run_once(m)? {
                break e;
            }
        };
        hv.stats.exits += 1;
        if exit != Exit::Stub(port::SYNC_DONE) {
            load(m, hv)?;
            return Ok(Err(format!(
                "the ring-0 sync trampoline ended in {exit:?} at {:#x}",
                hv.vcpu.cpu.regs.rip
            )));
        }
        hv.stats.syncs += 1;
        hv.stats.synced_entries += chunk.len() as u64;
        match kind {
            SyncFlush::Page => hv.stats.invlpgs += 1,
            SyncFlush::Full => {
                hv.stats.cr3_reloads += 1;
                hv.tlb.flushed_all();
            }
            SyncFlush::None => {}
        }
    }
    hv.vcpu.cpu = guest;
    hv.vcpu.cpu.regs_dirty = true;
    hv.vcpu.cpu.sregs_dirty = true;
    Ok(Ok(()))
}
