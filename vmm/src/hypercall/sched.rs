//! `sched_op`: shutdown (poweroff/crash/... become the VMM's exit status), yield, block
//! (nothing can wake us, so it returns at once), shutdown_code. Also the old `sched_op_compat`.

use super::{Ctx, Hypervisor};
use pagetable_validator::abi::{hypercall as hc, sched};

impl Hypervisor {
    pub(super) fn sched_op(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> i64 {
        match cmd {
            sched::SCHEDOP_YIELD | sched::SCHEDOP_BLOCK => 0,
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
        match cmd {
            sched::SCHEDOP_YIELD | sched::SCHEDOP_BLOCK => 0,
            sched::SCHEDOP_SHUTDOWN => {
                ctx.shutdown = Some(arg as u32);
                0
            }
            _ => self.unsupported(ctx, hc::SCHED_OP_COMPAT, Some(cmd)),
        }
    }
}
