//! `vcpu_op` (hypercall 24) and `set_timer_op` (15), as Xen 4.17's `do_vcpu_op`
//! (arch/x86/domain.c) and `common_vcpu_op` (common/domain.c) answer them for our one
//! vCPU: every vCPU id but 0 is -ENOENT.

use super::{err, handle_okay, Ctx, Hypervisor};
use crate::pv::time::{MILLISECS, STIME_DELTA_MAX};
use pagetable_validator::abi::vcpuop::*;
use pagetable_validator::abi::{errno, hypercall as hc, sched, shinfo, VcpuRegisterVcpuInfo};
use vm_memory::ByteValued;

impl Hypervisor {
    fn vcpu_read(&mut self, ctx: &Ctx, arg: u64, buf: &mut [u8]) -> Result<(), i64> {
        if !handle_okay(arg) {
            return Err(err(errno::EFAULT));
        }
        self.ram
            .read_virt(ctx.cr3, arg, buf)
            .map_err(|f| self.efault(ctx, "vcpu_op", "argument", f))
    }

    pub(super) fn vcpu_op(&mut self, ctx: &mut Ctx, cmd: u64, vcpuid: u64, arg: u64) -> i64 {
        // `int cmd, unsigned int vcpuid`.
        let (cmd, vcpuid) = (u64::from(cmd as u32), vcpuid as u32);
        if vcpuid != 0 {
            return err(errno::ENOENT);
        }
        match self.vcpu_op_inner(ctx, cmd, arg) {
            Ok(rc) | Err(rc) => rc,
        }
    }

    fn vcpu_op_inner(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> Result<i64, i64> {
        let rc = match cmd {
            VCPUOP_SEND_NMI if arg != 0 => err(errno::EINVAL),
            VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => {
                let mut b = [0u8; 8];
                self.vcpu_read(ctx, arg, &mut b)?;
                let addr = u64::from_le_bytes(b);
                if !handle_okay(addr) {
                    return Err(err(errno::EFAULT));
                }
                self.time.time_info_guest = (addr != 0).then_some(addr);
                self.update_vcpu_system_time();
                0
            }
            // Only for a pinned hardware-domain vCPU (dom0_vcpus_pin), which we are not.
            VCPUOP_GET_PHYSID => err(errno::EINVAL),
            VCPUOP_INITIALISE => {
                // default_initialise_vcpu: the context is read, then vCPU 0 is initialised.
                let mut b = vec![0u8; VCPU_GUEST_CONTEXT_SIZE];
                self.vcpu_read(ctx, arg, &mut b)?;
                err(errno::EEXIST)
            }
            // Already up: nothing to wake.
            VCPUOP_UP => 0,
            VCPUOP_DOWN => {
                // The last vCPU going down shuts the domain down.
                ctx.shutdown = Some(sched::SHUTDOWN_POWEROFF);
                0
            }
            VCPUOP_IS_UP => 1,
            VCPUOP_GET_RUNSTATE_INFO => {
                let r = self.runstate_now().to_bytes(false);
                if !handle_okay(arg) {
                    return Err(err(errno::EFAULT));
                }
                match self.write_arg(ctx, arg, &r, "vcpu_op", "runstate") {
                    Ok(()) => 0,
                    Err(rc) => rc,
                }
            }
            VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
                let mut b = [0u8; 8];
                self.vcpu_read(ctx, arg, &mut b)?;
                let addr = u64::from_le_bytes(b);
                if !handle_okay(addr) {
                    return Err(err(errno::EFAULT));
                }
                self.time.runstate_guest = (addr != 0).then_some(addr);
                // __copy_to_guest of the current runstate; a failure is ignored.
                let r = self.runstate_now().to_bytes(false);
                if addr != 0 {
                    let _ = self.write_guest(ctx.cr3, addr, &r);
                }
                0
            }
            VCPUOP_SET_PERIODIC_TIMER => {
                let mut set = VcpuSetPeriodicTimer::default();
                self.vcpu_read(ctx, arg, set.as_mut_slice())?;
                let period = set.period_ns;
                if period < MILLISECS as u64 || period > STIME_DELTA_MAX {
                    return Err(err(errno::EINVAL));
                }
                self.set_periodic_timer(period as i64);
                0
            }
            VCPUOP_STOP_PERIODIC_TIMER => {
                self.set_periodic_timer(0);
                0
            }
            VCPUOP_SET_SINGLESHOT_TIMER => {
                let mut set = VcpuSetSingleshotTimer::default();
                self.vcpu_read(ctx, arg, set.as_mut_slice())?;
                let timeout = set.timeout_abs_ns;
                // `set.timeout_abs_ns < NOW()` compares as unsigned.
                let now = self.now();
                if timeout < now as u64 {
                    self.time.singleshot = None;
                    self.send_timer_event();
                } else {
                    self.time.singleshot = Some(timeout as i64);
                }
                0
            }
            VCPUOP_STOP_SINGLESHOT_TIMER => {
                self.time.singleshot = None;
                0
            }
            VCPUOP_REGISTER_VCPU_INFO => {
                let mut r = VcpuRegisterVcpuInfo::default();
                self.vcpu_read(ctx, arg, r.as_mut_slice())?;
                let rc = match self.map_vcpu_info(r.mfn, r.offset) {
                    Ok(()) => 0,
                    Err(e) => e,
                };
                // force_update_vcpu_system_time, whatever map_vcpu_info said.
                self.update_vcpu_system_time();
                rc
            }
            _ => self.unsupported(ctx, hc::VCPU_OP, Some(cmd)),
        };
        Ok(rc)
    }

    /// `map_vcpu_info`: vcpu_info moves into a guest frame; its contents are copied, every
    /// selector bit and the upcall are set pending so nothing is lost.
    pub fn map_vcpu_info(&mut self, mfn: u64, offset: u32) -> Result<(), i64> {
        if u64::from(offset) > 4096 - shinfo::VCPU_INFO_SIZE || offset & 7 != 0 {
            return Err(err(errno::ENXIO));
        }
        if self.vcpu.pv.vcpu_info_gpa >> 12 != self.xen.shared_info_mfn() {
            return Err(err(errno::EINVAL));
        }
        let page = self.map_guest_page(mfn)?;
        let new = page + u64::from(offset);
        let mut old = [0u8; shinfo::VCPU_INFO_SIZE as usize];
        self.ram.read_phys(self.vcpu.pv.vcpu_info_gpa, &mut old);
        self.ram.write_phys(new, &old);
        self.vcpu.pv.vcpu_info_gpa = new;
        self.ram
            .write_u64_phys(new + shinfo::VI_PENDING_SEL, u64::MAX);
        self.vcpu_mark_events_pending();
        Ok(())
    }

    /// `do_set_timer_op(timeout)`.
    pub(super) fn set_timer_op(&mut self, timeout: u64) -> i64 {
        let timeout = timeout as i64;
        let now = self.now();
        let offset = timeout.wrapping_sub(now);
        if timeout == 0 {
            self.time.singleshot = None;
        } else if timeout < 0 || (offset > 0 && (offset >> 50) as u32 != 0) {
            // "Linux workaround": a huge timeout becomes 100 ms from now.
            self.time.singleshot = Some(now.saturating_add(100 * MILLISECS));
        } else {
            self.time.singleshot = Some(timeout);
        }
        0
    }
}
