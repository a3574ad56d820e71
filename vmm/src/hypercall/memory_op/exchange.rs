//! `XENMEM_exchange` (`memory_exchange`): input extents given back, output extents
//! allocated in their place, chunk by chunk.

use super::{propagate_node, Access, MAX_ORDER};
use crate::hypercall::{err, Ctx, Hypervisor};
use crate::log_record::VmmRecord;
use pagetable_validator::abi::memory::{self as m, MemoryExchange, MemoryReservation};
use pagetable_validator::abi::{errno, hypercall as hc};
use std::collections::BTreeSet;

impl Hypervisor {
    // ----- exchange -----

    /// `XENMEM_exchange` (`memory_exchange`).
    pub(super) fn exchange(&mut self, ctx: &mut Ctx, a: [u64; 6]) -> i64 {
        let arg = a[1];
        let Ok(MemoryExchange {
            input,
            output,
            mut nr_exchanged,
        }) = self.guest_obj::<MemoryExchange>(ctx, arg)
        else {
            return err(errno::EFAULT);
        };
        let rc = self.exchange_checks(&input, &output, nr_exchanged);
        let (ico, oco, bits) = match rc {
            Ok(Some(x)) => x,
            Ok(None) => return 0,
            Err(rc) => return self.exchange_writeback(ctx, arg, nr_exchanged, rc),
        };
        let first = nr_exchanged >> ico;
        let last = input.nr_extents >> ico;
        for i in first..last {
            if i != first && ctx.preempt_check(i - first) {
                nr_exchanged = i << ico;
                if self.exchange_put(ctx, arg, nr_exchanged).is_err() {
                    return err(errno::EFAULT);
                }
                return ctx.create_continuation(
                    hc::MEMORY_OP,
                    a,
                    &[(0, m::XENMEM_EXCHANGE), (1, arg)],
                );
            }
            Self::extent_worked(ctx, input.extent_order + ico as u32);
            if let Err(rc) = self.exchange_chunk(ctx, &input, &output, i, ico, oco, bits) {
                return self.exchange_writeback(ctx, arg, i << ico, rc);
            }
        }
        self.log.record(VmmRecord::MemoryOp {
            op: m::XENMEM_EXCHANGE,
            from: nr_exchanged,
            to: input.nr_extents,
            order: None,
            tot_pages: None,
            rip: ctx.rip,
        });
        match self.exchange_put(ctx, arg, input.nr_extents) {
            Ok(()) => 0,
            Err(_) => err(errno::EFAULT),
        }
    }

    /// The checks before any work: `Ok(None)` = nothing left (return 0 without writing
    /// back), `Ok(Some((in_chunk_order, out_chunk_order, address_bits)))`, or the error for
    /// the `fail_early` path.
    fn exchange_checks(
        &self,
        input: &MemoryReservation,
        output: &MemoryReservation,
        nr_exchanged: u64,
    ) -> Result<Option<(u64, u64, u32)>, i64> {
        let (io, oo) = (input.extent_order, output.extent_order);
        if io.max(oo) > MAX_ORDER {
            return Err(err(errno::EPERM));
        }
        if nr_exchanged > input.nr_extents
            || input.domid != output.domid
            || (u64::MAX >> io) < input.nr_extents
            || (u64::MAX >> oo) < output.nr_extents
            || (input.nr_extents << io) != (output.nr_extents << oo)
        {
            return Err(err(errno::EINVAL));
        }
        if nr_exchanged == input.nr_extents {
            return Ok(None);
        }
        if !Self::subrange_okay(input.extent_start, nr_exchanged, input.nr_extents - 1) {
            return Err(err(errno::EFAULT));
        }
        let (ico, oco) = if io <= oo {
            (u64::from(oo - io), 0)
        } else {
            (0, u64::from(io - oo))
        };
        let out_first = if io <= oo {
            nr_exchanged >> ico
        } else {
            nr_exchanged.wrapping_shl(oco as u32)
        };
        if !Self::subrange_okay(
            output.extent_start,
            out_first,
            output.nr_extents.wrapping_sub(1),
        ) {
            return Err(err(errno::EFAULT));
        }
        if !propagate_node(output.mem_flags) {
            return Err(err(errno::EINVAL));
        }
        if !self.is_self(input.domid) {
            return Err(err(errno::ESRCH));
        }
        Ok(Some((
            ico,
            oco,
            m::xenmemf_get_address_bits(output.mem_flags),
        )))
    }

    /// One chunk: steal 2^ico input extents, allocate 2^oco output extents, then swap.
    #[allow(clippy::too_many_arguments)]
    fn exchange_chunk(
        &mut self,
        ctx: &Ctx,
        input: &MemoryReservation,
        output: &MemoryReservation,
        i: u64,
        ico: u64,
        oco: u64,
        bits: u32,
    ) -> Result<(), i64> {
        // Steal: every input frame must be dom0's, allocated, and referenced by nothing else
        // (steal_page); a frame named twice is already stolen the second time.
        let mut stolen = BTreeSet::new();
        for j in 0..1u64 << ico {
            let Ok(gmfn) = self.list_get(ctx, input.extent_start, (i << ico) + j) else {
                return Err(err(errno::EFAULT));
            };
            for k in 0..1u64 << input.extent_order {
                let mfn = gmfn.wrapping_add(k);
                if mfn >= self.xen.max_page() {
                    return Err(err(errno::EINVAL));
                }
                let ok = self.owned(mfn)
                    && !self.mem.released.contains(&mfn)
                    && self.unreferenced(mfn)
                    && stolen.insert(mfn);
                if !ok {
                    log::info!("exchange: Bad steal mfn {mfn:x} from d0");
                    return Err(err(errno::EINVAL));
                }
            }
        }
        // Allocate the output extents (the stolen frames are not in the heap yet).
        let mut out = Vec::new();
        for _ in 0..1u64 << oco {
            match self.alloc_extent(output.extent_order, bits) {
                Ok(mfn) => out.push(mfn),
                Err(e) => {
                    log::info!("exchange: {e}");
                    for mfn in out {
                        self.free_extent(mfn, output.extent_order);
                    }
                    return Err(err(errno::ENOMEM));
                }
            }
        }
        // Beyond this point the chunk cannot fail: free the input, assign the output.
        for mfn in stolen {
            self.free_frame(mfn);
        }
        let mut rc = 0;
        for (j, &mfn) in out.iter().enumerate() {
            let idx = (i << oco) + j as u64;
            let Ok(gpfn) = self.list_get(ctx, output.extent_start, idx) else {
                rc = err(errno::EFAULT);
                continue;
            };
            for k in 0..1u64 << output.extent_order {
                self.set_m2p(mfn + k, gpfn.wrapping_add(k));
            }
            if self.list_put(ctx, output.extent_start, idx, mfn).is_err() {
                rc = err(errno::EFAULT);
            }
        }
        if rc != 0 {
            return Err(rc);
        }
        Ok(())
    }

    fn exchange_put(&mut self, ctx: &Ctx, arg: u64, nr: u64) -> Result<(), Access> {
        self.guest_write(
            ctx,
            arg.wrapping_add(m::EXCHANGE_NR_EXCHANGED as u64),
            &nr.to_le_bytes(),
        )
    }

    /// `fail_early`: report `nr_exchanged`; failing to, -EFAULT.
    fn exchange_writeback(&mut self, ctx: &Ctx, arg: u64, nr: u64, rc: i64) -> i64 {
        match self.exchange_put(ctx, arg, nr) {
            Ok(()) => rc,
            Err(_) => err(errno::EFAULT),
        }
    }
}
