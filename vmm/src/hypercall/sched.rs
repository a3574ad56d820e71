//! `sched_op`: shutdown (poweroff/crash/... become the VMM's exit status), yield, block
//! (events enabled; the vCPU loop sleeps until an event or timer wakes it), poll (ports and
//! an absolute timeout), shutdown_code. Also the old `sched_op_compat`.

use super::{err, handle_okay, Ctx, Hypervisor};
use crate::pv::time::Blocked;
use pagetable_validator::abi::{errno, hypercall as hc, sched, shinfo, SchedPoll};

/// Xen's "fairly arbitrary limit" on SCHEDOP_poll's port count.
pub const POLL_MAX_PORTS: u32 = 128;

impl Hypervisor {
    pub(super) fn sched_op(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> i64 {
        // `int cmd`.
        let cmd = u64::from(cmd as u32);
        match cmd {
            sched::SCHEDOP_YIELD => 0,
            sched::SCHEDOP_BLOCK => {
                self.vcpu_block_enable_events();
                0
            }
            sched::SCHEDOP_POLL => self.do_poll(ctx, arg),
            sched::SCHEDOP_SHUTDOWN | sched::SCHEDOP_SHUTDOWN_CODE => {
                let reason = match self.ram.read_u32_virt(ctx.cr3, arg) {
                    Ok(r) => r,
                    Err(f) => return self.efault(ctx, "sched_op", "sched_shutdown", f),
                };
                if cmd == sched::SCHEDOP_SHUTDOWN {
                    ctx.shutdown = Some(reason);
                } else {
                    self.shutdown_code = Some(reason);
                }
                0
            }
            _ => self.unsupported(ctx, hc::SCHED_OP, Some(cmd)),
        }
    }

    pub(super) fn sched_op_compat(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> i64 {
        let cmd = u64::from(cmd as u32);
        match cmd {
            sched::SCHEDOP_YIELD => 0,
            sched::SCHEDOP_BLOCK => {
                self.vcpu_block_enable_events();
                0
            }
            sched::SCHEDOP_SHUTDOWN => {
                ctx.shutdown = Some(arg as u32);
                0
            }
            _ => self.unsupported(ctx, hc::SCHED_OP_COMPAT, Some(cmd)),
        }
    }

    /// `vcpu_block_enable_events`: unmask the upcall, then block unless an event is already
    /// waiting.
    pub fn vcpu_block_enable_events(&mut self) {
        let mask = self.vcpu.pv.vcpu_info_gpa + shinfo::VI_UPCALL_MASK;
        if self.vcpu_info_writable() {
            self.ram.write_phys(mask, &[0]);
        }
        if !self.local_events_need_delivery() {
            self.block(Blocked::Block);
        }
    }

    /// `do_poll`.
    fn do_poll(&mut self, ctx: &mut Ctx, arg: u64) -> i64 {
        if !handle_okay(arg) {
            return err(errno::EFAULT);
        }
        let SchedPoll {
            ports,
            nr_ports,
            timeout,
            ..
        } = match self.ram.read_obj_virt(ctx.cr3, arg) {
            Ok(p) => p,
            Err(f) => return self.efault(ctx, "sched_op", "sched_poll", f),
        };
        if nr_ports > POLL_MAX_PORTS {
            return err(errno::EINVAL);
        }
        if !handle_okay(ports) {
            return err(errno::EFAULT);
        }
        if self.local_events_need_delivery() {
            return 0;
        }
        let mut port = 0;
        for i in 0..u64::from(nr_ports) {
            port = match self.ram.read_u32_virt(ctx.cr3, ports.wrapping_add(i * 4)) {
                Ok(p) => p,
                Err(f) => return self.efault(ctx, "sched_op", "sched_poll ports", f),
            };
            match self.evtchn_port_poll(port) {
                0 => {}
                rc if rc > 0 => return 0,
                rc => return rc,
            }
        }
        self.block(Blocked::Poll {
            port: (nr_ports == 1).then_some(port),
        });
        if timeout != 0 {
            self.time.poll_timeout = Some(timeout as i64);
        }
        0
    }
}
