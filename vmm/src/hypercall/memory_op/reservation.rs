//! `XENMEM_increase_reservation`, `XENMEM_decrease_reservation` and
//! `XENMEM_populate_physmap`: frames leave and join Xen's free heap, extent by extent.

use super::{order_from_pages, propagate_node, Done, MAX_ORDER};
use crate::hypercall::{handle_okay, Ctx, Hypervisor};
use crate::log_record::VmmRecord;
use pagetable_validator::abi::memory::{self as m, MemoryReservation};
use pagetable_validator::abi::{domid, hypercall as hc};

impl Hypervisor {
    // ----- increase / decrease / populate -----

    /// `XENMEM_{increase,decrease}_reservation`, `XENMEM_populate_physmap`: returns the
    /// number of extents done (including `start`), or continues.
    pub(super) fn reservation_op(
        &mut self,
        ctx: &mut Ctx,
        a: [u64; 6],
        op: u64,
        start: u64,
    ) -> i64 {
        let arg = a[1];
        let Ok(r) = self.guest_obj::<MemoryReservation>(ctx, arg) else {
            return start as i64;
        };
        // Is the size too large to encode a continuation?
        if r.nr_extents > u64::from(u32::MAX >> m::MEMOP_EXTENT_SHIFT) || start >= r.nr_extents {
            return start as i64;
        }
        if !self.is_self(r.domid) {
            return start as i64;
        }
        let Some(bits) = self.construct_memflags(r.mem_flags) else {
            return start as i64;
        };
        let pod =
            op == m::XENMEM_POPULATE_PHYSMAP && r.mem_flags & m::XENMEMF_POPULATE_ON_DEMAND != 0;
        let d = match op {
            m::XENMEM_INCREASE_RESERVATION => self.increase_reservation(ctx, &r, start, bits),
            m::XENMEM_DECREASE_RESERVATION => self.decrease_reservation(ctx, &r, start),
            _ => self.populate_physmap(ctx, &r, start, bits, pod),
        };
        if d.nr_done != start {
            self.log.record(VmmRecord::MemoryOp {
                op,
                from: start,
                to: d.nr_done,
                order: Some(r.extent_order),
                tot_pages: Some(self.tot_pages()),
                rip: ctx.rip,
            });
        }
        if d.preempted {
            return ctx.create_continuation(
                hc::MEMORY_OP,
                a,
                &[(0, op | (d.nr_done << m::MEMOP_EXTENT_SHIFT)), (1, arg)],
            );
        }
        d.nr_done as i64
    }

    /// `rcu_lock_domain_by_any_id`: DOMID_SELF and 0 are us; there is no other domain.
    pub(super) fn is_self(&self, d: u16) -> bool {
        d == domid::DOMID_SELF || d == 0
    }

    /// `construct_memop_from_reservation`: the allocation's address-bit limit (0 = none), or
    /// `None` for Xen's -EINVAL.
    fn construct_memflags(&self, flags: u32) -> Option<u32> {
        let bits = m::xenmemf_get_address_bits(flags);
        let max_bits = order_from_pages(self.xen.max_page()) + 12;
        let limit = if bits != 0 && bits < max_bits {
            if bits <= 12 {
                return None;
            }
            bits
        } else {
            0
        };
        // dom0 has no vNUMA: XENMEMF_vnode is ignored; otherwise propagate_node.
        if flags & m::XENMEMF_VNODE == 0 && !propagate_node(flags) {
            return None;
        }
        Some(limit)
    }

    /// Xen's `guest_handle_subrange_okay(list, first, last)` for `xen_pfn_t` elements.
    pub(super) fn subrange_okay(list: u64, first: u64, last: u64) -> bool {
        let count = last.wrapping_sub(first).wrapping_add(1);
        count < u64::MAX / 8 && handle_okay(list.wrapping_add(first.wrapping_mul(8)))
    }

    /// Per-extent preemption, Xen's `i != a->nr_done && hypercall_preempt_check()`; an
    /// extent of 2^order pages counts as `max(1, 2^order / 512)` elements of work.
    fn extent_preempt(ctx: &mut Ctx, i: u64, start: u64) -> bool {
        ctx.preempt_check(i - start)
    }

    pub(super) fn extent_worked(ctx: &mut Ctx, order: u32) {
        let units = (1u64 << order.min(MAX_ORDER)) / 512;
        for _ in 0..units.max(1) {
            ctx.worked();
            if ctx.work >= crate::hypercall::PREEMPT_BUDGET {
                break;
            }
        }
    }

    fn increase_reservation(
        &mut self,
        ctx: &mut Ctx,
        r: &MemoryReservation,
        start: u64,
        bits: u32,
    ) -> Done {
        let list = r.extent_start;
        if list != 0 && !Self::subrange_okay(list, start, r.nr_extents - 1) {
            return Done::at(start);
        }
        if r.extent_order > MAX_ORDER {
            return Done::at(start);
        }
        self.walk_extents(ctx, r, start, |hv, ctx, i| {
            let mfn = match hv.alloc_extent(r.extent_order, bits) {
                Ok(mfn) => mfn,
                Err(e) => {
                    log::info!("increase_reservation: extent {i}: {e}");
                    return false;
                }
            };
            // The extent is dom0's now (with an M2P entry the guest sets itself), even if
            // the guest cannot be told where it is.
            list == 0 || hv.list_put(ctx, list, i, mfn).is_ok()
        })
    }

    /// The extent loop of the reservation ops: extents `start..nr_extents`, preempted before
    /// each but the first (the work of an extent grows with its order); `one` says whether
    /// extent `i` was done, and the first that was not ends the loop.
    fn walk_extents(
        &mut self,
        ctx: &mut Ctx,
        r: &MemoryReservation,
        start: u64,
        mut one: impl FnMut(&mut Self, &mut Ctx, u64) -> bool,
    ) -> Done {
        for i in start..r.nr_extents {
            if Self::extent_preempt(ctx, i, start) {
                return Done {
                    nr_done: i,
                    preempted: true,
                };
            }
            Self::extent_worked(ctx, r.extent_order);
            if !one(self, ctx, i) {
                return Done::at(i);
            }
        }
        Done::at(r.nr_extents)
    }

    fn populate_physmap(
        &mut self,
        ctx: &mut Ctx,
        r: &MemoryReservation,
        start: u64,
        bits: u32,
        pod: bool,
    ) -> Done {
        let list = r.extent_start;
        if !Self::subrange_okay(list, start, r.nr_extents - 1) {
            return Done::at(start);
        }
        // PoD requests are bounded by MAX_ORDER, the others by max_order(dom0): both 18.
        if r.extent_order > MAX_ORDER {
            return Done::at(start);
        }
        self.walk_extents(ctx, r, start, |hv, ctx, i| {
            let Ok(gpfn) = hv.list_get(ctx, list, i) else {
                return false;
            };
            if pod {
                // "Disallow populating PoD pages on oneself."
                return false;
            }
            let mfn = match hv.alloc_extent(r.extent_order, bits) {
                Ok(mfn) => mfn,
                Err(e) => {
                    log::info!("populate_physmap: extent {i}: {e}");
                    return false;
                }
            };
            // guest_physmap_add_page for PV: the M2P learns the new frames' pfns.
            for k in 0..1u64 << r.extent_order {
                hv.set_m2p(mfn + k, gpfn.wrapping_add(k));
            }
            hv.list_put(ctx, list, i, mfn).is_ok()
        })
    }

    fn decrease_reservation(&mut self, ctx: &mut Ctx, r: &MemoryReservation, start: u64) -> Done {
        let list = r.extent_start;
        if !Self::subrange_okay(list, start, r.nr_extents - 1) || r.extent_order > MAX_ORDER {
            return Done::at(start);
        }
        self.walk_extents(ctx, r, start, |hv, ctx, i| {
            let Ok(gmfn) = hv.list_get(ctx, list, i) else {
                return false;
            };
            for j in 0..1u64 << r.extent_order {
                if let Err(e) = hv.guest_remove_page(gmfn.wrapping_add(j)) {
                    log::info!("decrease_reservation: extent {i}: {e}");
                    return false;
                }
            }
            true
        })
    }

    /// Xen's `guest_remove_page` for PV (gmfn = mfn): drops the allocation reference; the
    /// frame is freed now if nothing else references it, else when its last reference goes.
    fn guest_remove_page(&mut self, mfn: u64) -> Result<(), String> {
        if mfn >= self.xen.max_page() {
            return Err(format!("Domain 0 page number {mfn:x} invalid (-EINVAL)"));
        }
        if !self.owned(mfn) {
            return Err(format!("Bad page free for Dom0 GFN {mfn:x} (-ENXIO)"));
        }
        if self.unreferenced(mfn) {
            self.free_frame(mfn);
        } else {
            self.mem.released.insert(mfn);
        }
        Ok(())
    }
}
