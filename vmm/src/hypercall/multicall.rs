//! `multicall(calls, nr)`: like Xen, every entry runs and gets its result written back (a failing
//! entry does not stop the batch); an unreadable entry or unwritable result ends the batch with
//! -EFAULT; a multicall inside a multicall is refused with -EINVAL.

use super::{err, Ctx, Hypervisor};
use pagetable_validator::abi::errno;

/// `sizeof(struct multicall_entry)` on x86_64: op, result, args[6].
const ENTRY_SIZE: u64 = 64;

impl Hypervisor {
    pub(super) fn multicall(&mut self, ctx: &mut Ctx, calls: u64, nr: u64) -> i64 {
        const NAME: &str = "multicall";
        if ctx.in_multicall {
            let rc = err(errno::EINVAL);
            self.log
                .vmm_refusal(NAME, rc, "nested multicall", ctx.rip, true);
            return rc;
        }
        if !super::handle_okay(calls) {
            self.stats.efaults += 1;
            return err(errno::EFAULT);
        }
        ctx.in_multicall = true;
        let mut rc = 0;
        for i in 0..(nr as u32 as u64) {
            let entry = calls.wrapping_add(i * ENTRY_SIZE);
            let mut b = [0u8; ENTRY_SIZE as usize];
            if let Err(f) = self.ram.read_virt(ctx.cr3, entry, &mut b) {
                rc = self.efault(ctx, NAME, "entry", f);
                break;
            }
            let word = |k: usize| u64::from_le_bytes(b[k * 8..k * 8 + 8].try_into().expect("8"));
            let op = word(0);
            let args = [word(2), word(3), word(4), word(5), word(6), word(7)];
            self.stats.multicall_entries += 1;
            let result = self.dispatch(ctx, op, args);
            if let Err(f) = self
                .ram
                .write_virt(ctx.cr3, entry + 8, &result.to_le_bytes())
            {
                rc = self.efault(ctx, NAME, "result", f);
                break;
            }
            if ctx.shutdown.is_some() {
                break; // The domain is going away; Xen stops running its calls too.
            }
        }
        ctx.in_multicall = false;
        rc
    }
}
