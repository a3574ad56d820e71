//! Running the ring-0 sync trampoline (pv/xen_area/stubs.rs) between exits: the vCPU enters it at
//! CPL 0 with the queue of the pagetable entries the VMM changed from userspace, and comes
//! back with `out SYNC_DONE` to the guest's own image.

use super::{load, put, run_once, VcpuError};
use crate::arch::Machine;
use crate::exit::Exit;
use crate::hypercall::Hypervisor;
use crate::pv::xen_area::{port, SyncFlush, XenLayout, SYNC_QUEUE_CAP};
use crate::tlb::Flush;
use kvm_bindings::kvm_segment;
use pagetable_validator::abi::x86 as xen;

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
pub(super) fn sync(m: &mut Machine, hv: &mut Hypervisor) -> Result<Result<(), String>, VcpuError> {
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
        put(m, Some(&regs), Some(&sregs))?;
        let exit = loop {
            if let Some(e) = run_once(m, &mut hv.stats.exit_cost)? {
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
