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
use pagetable_validator::abi::{errno, hypercall as hc, MulticallEntry};
use std::mem::{offset_of, size_of};
use vm_memory::ByteValued;

const ENTRY_SIZE: u64 = size_of::<MulticallEntry>() as u64;
const RESULT: u64 = offset_of!(MulticallEntry, result) as u64;

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
            let mut e: MulticallEntry = match self.ram.read_obj_virt(ctx.cr3, entry) {
                Ok(e) => e,
                Err(f) => {
                    rc = self.efault(ctx, NAME, "entry", f);
                    break;
                }
            };
            let op = e.op;
            let result = self.dispatch(ctx, op, e.args);
            if let Err(f) = self.write_guest(ctx.cr3, entry + RESULT, &result.to_le_bytes()) {
                // The sub-call's continuation (if any) dies with the batch.
                ctx.continuation = None;
                rc = self.efault(ctx, NAME, "result", f);
                break;
            }
            if let Some(c) = ctx.continuation.take() {
                // Xen: copy the sub-call's continuation into the entry, then continue the
                // multicall at this entry; if the entry cannot be written, -EFAULT.
                e.result = result;
                e.args = c.args;
                if let Err(f) = self.write_guest(ctx.cr3, entry, e.as_slice()) {
                    rc = self.efault(ctx, NAME, "entry (continuation)", f);
                    break;
                }
                rc = continue_multicall(ctx, a, entry, nr - i);
                break;
            }
            // Counted once, when the entry's call has finished.
            self.stats.multicall_entries += 1;
            self.stats.count(hc::Hypercall::from_nr(op));
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
