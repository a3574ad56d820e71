//! `mmu_update`, `update_va_mapping` and `mmuext_op`, served through the validator.
//!
//! Batches are read one element at a time from guest memory, stop at the first failure, and
//! report how many succeeded through `done` (when non-null), like Xen. Every successful
//! operation's event goes through `tlb.rs`, which decides what the stub flushes on the way back.

use super::{err, Ctx, Hypervisor};
use crate::log_record::VmmRecord;
use crate::tlb::Flush;
use pagetable_validator::abi::{errno, hypercall as hc, mmu, mmuext, uvmf, MmuUpdate, MmuextOp};
use pagetable_validator::pte::PAGE_SIZE;
use pagetable_validator::Mfn;
use pagetable_validator::{GuestFrames, XenError};
use vm_memory::ByteValued;

use pagetable_validator::abi::mmu::UPDATE_PREEMPTED as MMU_UPDATE_PREEMPTED;

impl Hypervisor {
    /// Logs the operation's events, notes the TLB flush it needs, returns Xen's rc.
    pub(crate) fn xen_result(
        &mut self,
        ctx: &mut Ctx,
        r: Result<(), XenError>,
        name: &'static str,
    ) -> i64 {
        let events = self.validator.drain_events();
        for ev in &events {
            ctx.flush(self.tlb.after(ev));
        }
        if let Some(m) = &mut self.frame_map {
            m.observe(&self.validator, &self.ram, &events);
        }
        self.log.validator_events(events, name, ctx.rip);
        match r {
            Ok(()) => 0,
            Err(e) => e.errno(),
        }
    }

    /// Xen's preamble of mmu_update/mmuext_op: the continuation forms of `count`
    /// (`MMU_UPDATE_PREEMPTED`) and the start-address check. `Err` = return this at once.
    fn batch_preamble(
        &mut self,
        ctx: &Ctx,
        ptr: u64,
        count: u64,
        pdone: u64,
        dom: u64,
    ) -> Result<(u64, u32), i64> {
        let count = count as u32 as u64;
        if count == MMU_UPDATE_PREEMPTED && ptr == 0 {
            // A finished continuation hands its result back in `foreigndom`.
            return Err(dom as u32 as i32 as i64);
        }
        let mut done = 0u32;
        if count & MMU_UPDATE_PREEMPTED != 0 && pdone != 0 {
            done = self.ram.read_u32_virt(ctx.cr3, pdone).unwrap_or(0);
        }
        if !super::handle_okay(ptr) {
            self.stats.efaults += 1;
            return Err(err(errno::EFAULT));
        }
        Ok((count & !MMU_UPDATE_PREEMPTED, done))
    }

    /// `mmu_update(reqs, count, pdone, foreigndom)`.
    pub(super) fn mmu_update(&mut self, ctx: &mut Ctx, a: [u64; 6]) -> i64 {
        const NAME: &str = "mmu_update";
        let [reqs, count, pdone, dom, ..] = a;
        let (count, mut done) = match self.batch_preamble(ctx, reqs, count, pdone, dom) {
            Ok(x) => x,
            Err(rc) => return rc,
        };
        // The upper 16 bits name the pagetables' owner plus one; 1 is us (dom0).
        let pt_dom = (dom as u32) >> 16;
        if pt_dom > 1 {
            let rc = err(errno::ESRCH);
            let why = format!("pagetable owner d{} does not exist", pt_dom - 1);
            self.log.vmm_refusal(NAME, rc, &why, ctx.rip, true);
            return rc;
        }
        if let Err(rc) = self.check_domid(ctx, NAME, dom) {
            self.write_done(ctx, pdone, done); // Xen reports `done` on this path too
            return rc;
        }
        let rc = self.walk_batch(
            ctx,
            (hc::MMU_UPDATE, "request"),
            a,
            count,
            &mut done,
            |hv, ctx, req: MmuUpdate| {
                if hv.log.machine() {
                    hv.snapshot_for_update(req);
                }
                let r = hv.validator.mmu_update(&mut hv.ram, req);
                let rc = hv.xen_result(ctx, r, NAME);
                if rc == 0 {
                    hv.stats.pte_updates += 1;
                    // MMU_MACHPHYS_UPDATE: Xen's set_gpfn_from_mfn also changes the M2P the
                    // guest reads (Linux's xen_update_mem_tables relies on it when it remaps).
                    if req.ptr & mmu::CMD_MASK == mmu::MACHPHYS_UPDATE {
                        hv.xen.set_m2p(&hv.ram, req.ptr >> 12, req.val);
                    }
                }
                rc
            },
        );
        self.write_done(ctx, pdone, done);
        rc
    }

    /// Xen's loop over the `count` elements (`what`s) of hypercall `nr`'s batch at `a[0]`: before
    /// element `i > 0` it may be preempted (the call continues from that element), an
    /// unreadable element is -EFAULT, and the first element `one` fails stops the batch. Each
    /// element that succeeds counts in `done`.
    fn walk_batch<T: ByteValued + Default>(
        &mut self,
        ctx: &mut Ctx,
        (nr, what): (u64, &'static str),
        a: [u64; 6],
        count: u64,
        done: &mut u32,
        mut one: impl FnMut(&mut Self, &mut Ctx, T) -> i64,
    ) -> i64 {
        let name = hc::Hypercall::from_nr(nr).name().unwrap_or("batch");
        let size = std::mem::size_of::<T>() as u64;
        for i in 0..count {
            let at = a[0].wrapping_add(i * size);
            if ctx.preempt_check(i) {
                return continue_batch(ctx, nr, a, at, count - i);
            }
            ctx.worked();
            let item = match self.ram.read_obj_virt(ctx.cr3, at) {
                Ok(item) => item,
                Err(f) => return self.efault(ctx, name, what, f),
            };
            let rc = one(self, ctx, item);
            if rc != 0 {
                return rc;
            }
            *done = done.wrapping_add(1);
        }
        0
    }

    /// Xen writes `done` when the pointer is non-null and ignores a failure to write it.
    fn write_done(&mut self, ctx: &Ctx, pdone: u64, done: u32) {
        if pdone != 0 {
            if let Err(f) = self.write_guest(ctx.cr3, pdone, &done.to_le_bytes()) {
                log::info!("done pointer {pdone:#x} not writable: {f}");
            }
        }
    }

    pub(super) fn update_va_mapping(
        &mut self,
        ctx: &mut Ctx,
        va: u64,
        val: u64,
        flags: u64,
    ) -> i64 {
        let r = self
            .validator
            .update_va_mapping(&mut self.ram, va, val, flags);
        let mut rc = self.xen_result(ctx, r, "update_va_mapping");
        if rc == 0 {
            self.stats.pte_updates += 1;
        }
        // Like Xen: a failed update skips the flush; a flush through a vCPU mask gives the
        // result of reading the mask (0 or -EFAULT).
        let kind = flags & uvmf::FLUSHTYPE_MASK;
        if rc == 0 && (kind == uvmf::TLB_FLUSH || kind == uvmf::INVLPG) {
            self.stats.flush_requests += 1;
            ctx.flush(if kind == uvmf::INVLPG {
                Flush::Page(va)
            } else {
                Flush::Full
            });
            let bmap = flags & !uvmf::FLUSHTYPE_MASK;
            if bmap != uvmf::LOCAL && bmap != uvmf::ALL {
                rc = match self.ram.read_virt(ctx.cr3, bmap, &mut [0u8; 8]) {
                    Ok(()) => 0,
                    Err(f) => self.efault(ctx, "update_va_mapping", "vcpumask", f),
                };
            }
        }
        rc
    }

    /// `mmuext_op(ops, count, pdone, foreigndom)`.
    pub(super) fn mmuext_op(&mut self, ctx: &mut Ctx, a: [u64; 6]) -> i64 {
        const NAME: &str = "mmuext_op";
        let [ops, count, pdone, dom, ..] = a;
        let (count, mut done) = match self.batch_preamble(ctx, ops, count, pdone, dom) {
            Ok(x) => x,
            Err(rc) => return rc,
        };
        if let Err(rc) = self.check_domid(ctx, NAME, dom) {
            return rc;
        }
        let rc = self.walk_batch(
            ctx,
            (hc::MMUEXT_OP, "op"),
            a,
            count,
            &mut done,
            |hv, ctx, op: MmuextOp| hv.one_mmuext(ctx, op.cmd, op.arg1, op.arg2),
        );
        self.write_done(ctx, pdone, done);
        rc
    }

    fn one_mmuext(&mut self, ctx: &mut Ctx, cmd: u32, arg1: u64, arg2: u64) -> i64 {
        const NAME: &str = "mmuext_op";
        match cmd {
            mmuext::PIN_L1_TABLE..=mmuext::PIN_L4_TABLE => {
                let level = cmd + 1;
                if self.log.machine() {
                    self.snapshot(arg1, level);
                }
                let r = self.validator.pin(&mut self.ram, level, Mfn(arg1));
                let rc = self.xen_result(ctx, r, NAME);
                if rc == 0 {
                    self.stats.pins += 1;
                }
                rc
            }
            mmuext::UNPIN_TABLE => {
                let r = self.validator.unpin(&mut self.ram, Mfn(arg1));
                let rc = self.xen_result(ctx, r, NAME);
                if rc == 0 {
                    self.stats.unpins += 1;
                }
                rc
            }
            mmuext::NEW_BASEPTR => {
                if self.log.machine() {
                    self.snapshot(arg1, 4);
                }
                let r = self.validator.new_baseptr(&mut self.ram, Mfn(arg1));
                let rc = self.xen_result(ctx, r, NAME);
                if rc == 0 {
                    self.fill_ro_mpt(arg1);
                    self.stats.baseptr_switches += 1;
                    // Later pointers (even later entries of this batch) use the new tables.
                    ctx.cr3 = arg1 * PAGE_SIZE;
                    ctx.flush(Flush::Full);
                }
                rc
            }
            mmuext::TLB_FLUSH_LOCAL
            | mmuext::TLB_FLUSH_MULTI
            | mmuext::TLB_FLUSH_ALL
            | mmuext::INVLPG_LOCAL
            | mmuext::INVLPG_MULTI
            | mmuext::INVLPG_ALL => {
                // One vCPU: the MULTI/ALL forms are local. A full flush covers INVLPG. The MULTI
                // forms read the vCPU mask first (Xen: -EINVAL if it cannot).
                if matches!(cmd, mmuext::TLB_FLUSH_MULTI | mmuext::INVLPG_MULTI)
                    && self.ram.read_virt(ctx.cr3, arg2, &mut [0u8; 8]).is_err()
                {
                    let rc = err(errno::EINVAL);
                    self.log.vmm_refusal(
                        NAME,
                        rc,
                        &format!("vcpumask {arg2:#x} unreadable"),
                        ctx.rip,
                        true,
                    );
                    return rc;
                }
                self.stats.flush_requests += 1;
                // A single-page flush of a kernel or user VA; a full flush otherwise.
                let single = matches!(
                    cmd,
                    mmuext::INVLPG_LOCAL | mmuext::INVLPG_MULTI | mmuext::INVLPG_ALL
                );
                ctx.flush(match single {
                    // Xen ignores an address outside the guest's range (`__addr_ok`).
                    true if super::handle_okay(arg1) => Flush::Page(arg1),
                    true => Flush::None,
                    false => Flush::Full,
                });
                self.log.record(VmmRecord::Flush {
                    cmd,
                    arg1,
                    rip: ctx.rip,
                });
                0
            }
            // We are dom0 and may flush caches; with no real devices there is nothing to flush.
            mmuext::FLUSH_CACHE | mmuext::FLUSH_CACHE_GLOBAL => 0,
            mmuext::SET_LDT => {
                // We keep no LDT (PV guests here never load segments); check the arguments
                // like Xen and accept.
                let ents = arg2 as u32;
                let ptr = if ents != 0 { arg1 } else { 0 };
                if ptr & 0xfff != 0 || !super::handle_okay(ptr) || ents > 8192 {
                    let rc = err(errno::EINVAL);
                    let why = format!("bad SET_LDT arguments ptr={ptr:#x} ents={ents}");
                    self.log.vmm_refusal(NAME, rc, &why, ctx.rip, true);
                    return rc;
                }
                0
            }
            mmuext::MARK_SUPER | mmuext::UNMARK_SUPER => err(errno::EOPNOTSUPP),
            mmuext::NEW_USER_BASEPTR => {
                if self.log.machine() && arg1 != 0 {
                    self.snapshot(arg1, 4);
                }
                let r = self.validator.new_user_baseptr(&mut self.ram, Mfn(arg1));
                let rc = self.xen_result(ctx, r, NAME);
                if rc == 0 && arg1 != 0 && self.m2p_strict() {
                    self.zap_ro_mpt(arg1);
                }
                if rc == 0 && !self.vcpu.pv.kernel_mode {
                    // Running on the user tables: they take effect at once.
                    self.vcpu.cpu.sregs_mut().cr3 = arg1 * PAGE_SIZE;
                    ctx.flush(Flush::Full);
                }
                rc
            }
            mmuext::CLEAR_PAGE | mmuext::COPY_PAGE => self.clear_or_copy(ctx, cmd, arg1, arg2),
            _ if cmd > mmuext::FLUSH_CACHE_GLOBAL => {
                // Xen: "Invalid extended pt command".
                let rc = err(errno::ENOSYS);
                let why = format!("invalid mmuext command {cmd}");
                self.log.vmm_refusal(NAME, rc, &why, ctx.rip, true);
                rc
            }
            _ => self.unsupported(ctx, hc::MMUEXT_OP, Some(cmd as u64)),
        }
    }

    /// MMUEXT_CLEAR_PAGE / MMUEXT_COPY_PAGE: the destination must be able to take a writable
    /// type (not an in-use pagetable or descriptor page), the source must be RAM; else -EINVAL
    /// like Xen.
    fn clear_or_copy(&mut self, ctx: &Ctx, cmd: u32, dst: u64, src: u64) -> i64 {
        let nr = self.ram.nr_frames();
        let in_use_table = |v: &pagetable_validator::Validator, m: u64| {
            v.frame_info(Mfn(m))
                .is_some_and(|i| i.ty.is_validated_type() && i.type_count > 0)
        };
        let ok = dst < nr
            && !in_use_table(&self.validator, dst)
            && (cmd == mmuext::CLEAR_PAGE || src < nr);
        if !ok {
            let rc = err(errno::EINVAL);
            let what = if cmd == mmuext::CLEAR_PAGE {
                "clearing"
            } else {
                "copying to"
            };
            self.log.vmm_refusal(
                "mmuext_op",
                rc,
                &format!("error {what} mfn {dst:#x}"),
                ctx.rip,
                true,
            );
            return rc;
        }
        let mut page = [0u8; PAGE_SIZE as usize];
        if cmd == mmuext::COPY_PAGE {
            self.ram.read_phys(src * PAGE_SIZE, &mut page);
        }
        self.ram.write_phys(dst * PAGE_SIZE, &page);
        self.record_page_write(ctx.rip, cmd, dst, src);
        0
    }
}

/// Xen's continuation of mmu_update/mmuext_op (format "hihi"): the array pointer advanced past
/// the elements served, `(count - i) | MMU_UPDATE_PREEMPTED`, `pdone` unchanged, `foreigndom`
/// as an unsigned int. `done` (counted per element) is written by the caller; the re-entry
/// reads it back from `pdone` because of the PREEMPTED bit and goes on adding.
fn continue_batch(ctx: &mut Ctx, nr: u64, a: [u64; 6], next: u64, left: u64) -> i64 {
    ctx.create_continuation(
        nr,
        a,
        &[
            (0, next),
            (1, (left | MMU_UPDATE_PREEMPTED) as u32 as u64),
            (3, a[3] as u32 as u64),
        ],
    )
}

#[cfg(test)]
#[path = "mmu_tests.rs"]
mod tests;
