//! `multicall(calls, nr)`: like Xen, every entry runs and gets its result written back (a failing
//! entry does not stop the batch); an unreadable entry or unwritable result ends the batch with
//! -EFAULT; a multicall inside a multicall is refused with -EINVAL.
//!
//! Preemption as in Xen's `do_multicall`: before entry `i > 0`, once the exit's budget is spent,
//! the multicall continues as `multicall(calls + i * 64, nr - i)`. An entry whose own call was
//! preempted (a long mmu_update/mmuext_op) gets its whole entry written back — result = the
//! call's number, args = the continuation's — and the multicall continues at that entry, so
//! the re-entry resumes the sub-call where it stopped.

use super::{err, Ctx, Hypervisor};
use pagetable_validator::abi::{errno, hypercall as hc};

/// `sizeof(struct multicall_entry)` on x86_64: op, result, args[6].
const ENTRY_SIZE: u64 = 64;

impl Hypervisor {
    pub(super) fn multicall(&mut self, ctx: &mut Ctx, a: [u64; 6]) -> i64 {
        const NAME: &str = "multicall";
        let [calls, nr, ..] = a;
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
        let nr = nr as u32 as u64;
        for i in 0..nr {
            let entry = calls.wrapping_add(i * ENTRY_SIZE);
            if ctx.preempt_check(i) {
                rc = continue_multicall(ctx, a, entry, nr - i);
                break;
            }
            ctx.worked();
            let mut b = [0u8; ENTRY_SIZE as usize];
            if let Err(f) = self.ram.read_virt(ctx.cr3, entry, &mut b) {
                rc = self.efault(ctx, NAME, "entry", f);
                break;
            }
            let word = |k: usize| u64::from_le_bytes(b[k * 8..k * 8 + 8].try_into().expect("8"));
            let op = word(0);
            let args = [word(2), word(3), word(4), word(5), word(6), word(7)];
            let result = self.dispatch(ctx, op, args);
            if let Err(f) = self.write_guest(ctx.cr3, entry + 8, &result.to_le_bytes()) {
                // The sub-call's continuation (if any) dies with the batch.
                ctx.continuation = None;
                rc = self.efault(ctx, NAME, "result", f);
                break;
            }
            if let Some(c) = ctx.continuation.take() {
                // Xen: copy the sub-call's continuation into the entry, then continue the
                // multicall at this entry; if the entry cannot be written, -EFAULT.
                let mut out = b;
                out[8..16].copy_from_slice(&result.to_le_bytes());
                for (k, v) in c.args.iter().enumerate() {
                    out[16 + k * 8..24 + k * 8].copy_from_slice(&v.to_le_bytes());
                }
                if let Err(f) = self.write_guest(ctx.cr3, entry, &out) {
                    rc = self.efault(ctx, NAME, "entry (continuation)", f);
                    break;
                }
                rc = continue_multicall(ctx, a, entry, nr - i);
                break;
            }
            // Counted once, when the entry's call has finished.
            self.stats.multicall_entries += 1;
            self.stats.count(op);
            if ctx.shutdown.is_some() {
                break; // The domain is going away; Xen stops running its calls too.
            }
        }
        ctx.in_multicall = false;
        rc
    }
}

/// Xen's multicall continuation (format "hi"): the list from the first entry not finished, and
/// the number of entries left.
fn continue_multicall(ctx: &mut Ctx, a: [u64; 6], next: u64, left: u64) -> i64 {
    ctx.create_continuation(hc::MULTICALL, a, &[(0, next), (1, left as u32 as u64)])
}

#[cfg(test)]
#[path = "multicall_tests.rs"]
mod tests;
