//! `memory_op` (hypercall 12) for our 64-bit PV dom0, answered as Xen 4.17.5 answers
//! (`common/memory.c` `do_memory_op`, `arch/x86/mm.c` `arch_memory_op`,
//! `arch/x86/x86_64/mm.c` `subarch_memory_op`; Debian's release build: no PV32, no
//! mem-sharing/paging, XSM dummy policy).
//!
//! # The memory model
//!
//! The host is our guest RAM plus the Xen area after it: Xen's `max_page` is the end of the
//! Xen area. All of RAM belongs to dom0 at boot (`start_info.nr_pages`), so Xen's free heap
//! starts empty; frames join it when dom0 gives them back (`decrease_reservation`,
//! `exchange`) and leave it when dom0 asks for memory (`increase_reservation`,
//! `populate_physmap`, `exchange`). An empty heap answers like a host with no free memory:
//! the allocation fails, which is also what real Xen answered Linux's swiotlb `exchange`
//! calls (-ENOMEM). dom0's `max_pages` is `UINT_MAX`, as Xen 4.17 sets it for a dom0
//! booted without `dom0_mem=max:` (dom0_build.c, `dom0_compute_nr_pages`).
//!
//! A RAM frame is in one of Xen's states: *allocated* to dom0 (`PGC_allocated` plus whatever
//! references the validator counts), *released* (dom0 dropped the allocation reference with
//! `decrease_reservation` while the frame was still mapped, pinned or in use as a base: Xen
//! frees it when the last reference goes; we free it at the next `memory_op` that finds it
//! unreferenced), or *free* (in the heap; M2P entry `INVALID_M2P_ENTRY`, as Xen's
//! `mark_page_free` sets it). For a PV guest the frame lists carry machine frames (no
//! translation): gmfn = mfn.
//!
//! Guest pointers are checked like Xen's `guest_handle_okay`/`__addr_ok` before every
//! access, so no pointer into the hypervisor hole (the Xen area's supervisor mappings)
//! reaches a copy.

use super::{err, handle_okay, Ctx, Hypervisor};
use crate::memory::Fault;
use pagetable_validator::abi::memory::{self as m, MemoryReservation};
use pagetable_validator::abi::{domid, errno, hypercall as hc, x86};
use serde_json::json;
use std::collections::BTreeSet;

/// dom0's `max_pages` (Xen 4.17 without `dom0_mem=max:`: `min(LONG_MAX, UINT_MAX)`).
pub const DOM0_MAX_PAGES: u64 = u32::MAX as u64;
/// `max_order(dom0)`: x86's CONFIG_PAGEALLOC_MAX_ORDER (18) for the control domain, capped
/// at MAX_ORDER (18).
pub const MAX_ORDER: u32 = 18;
/// x86 `MAX_NUMNODES` (NODES_SHIFT 6).
pub const MAX_NUMNODES: u32 = 64;
/// `INVALID_M2P_ENTRY`.
pub const INVALID_M2P_ENTRY: u64 = u64::MAX;
/// E820 types and the packed 20-byte `struct e820entry` (Xen's asm/e820.h).
pub const E820_RAM: u32 = 1;
const E820_ENTRY_SIZE: u64 = 20;
/// `sizeof(struct xen_pod_target)`.
const POD_TARGET_SIZE: usize = 40;

/// Xen's heap and dom0's released frames.
#[derive(Debug, Default, Clone)]
pub struct Reservation {
    /// Frames in Xen's free heap.
    free: BTreeSet<u64>,
    /// Frames dom0 gave up while they were still referenced.
    released: BTreeSet<u64>,
}

impl Reservation {
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }
    #[cfg(test)]
    pub fn is_free(&self, mfn: u64) -> bool {
        self.free.contains(&mfn)
    }
    #[cfg(test)]
    pub fn is_released(&self, mfn: u64) -> bool {
        self.released.contains(&mfn)
    }
}

/// Why a guest buffer could not be accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Access {
    #[error("{0:#x} is in the hypervisor's address range")]
    Hole(u64),
    #[error(transparent)]
    Fault(#[from] Fault),
}

/// Result of a reservation operation: extents done and whether it was preempted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Done {
    nr_done: u64,
    preempted: bool,
}

/// Why Xen's `alloc_domheap_pages` returned NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum AllocError {
    #[error("over-allocation: {tot} + {n} pages > max_pages")]
    OverAllocation { tot: u64, n: u64 },
    #[error("no free order-{0} extent below the address limit")]
    NoMemory(u32),
}

impl Hypervisor {
    /// `memory_op(cmd, arg)`.
    pub(super) fn memory_op(&mut self, ctx: &mut Ctx, a: [u64; 6]) -> i64 {
        let (cmd, arg) = (a[0], a[1]);
        let start = cmd >> m::MEMOP_EXTENT_SHIFT;
        let op = cmd & m::MEMOP_CMD_MASK;
        self.reap_released();
        match op {
            m::XENMEM_INCREASE_RESERVATION
            | m::XENMEM_DECREASE_RESERVATION
            | m::XENMEM_POPULATE_PHYSMAP => self.reservation_op(ctx, a, op, start),
            m::XENMEM_EXCHANGE if start != 0 => err(errno::EINVAL),
            m::XENMEM_EXCHANGE => self.exchange(ctx, a),
            m::XENMEM_MAXIMUM_RAM_PAGE if start != 0 => err(errno::EINVAL),
            m::XENMEM_MAXIMUM_RAM_PAGE => self.xen.max_page() as i64,
            m::XENMEM_CURRENT_RESERVATION
            | m::XENMEM_MAXIMUM_RESERVATION
            | m::XENMEM_MAXIMUM_GPFN
                if start != 0 =>
            {
                err(errno::EINVAL)
            }
            m::XENMEM_CURRENT_RESERVATION
            | m::XENMEM_MAXIMUM_RESERVATION
            | m::XENMEM_MAXIMUM_GPFN => self.reservation_query(ctx, op, arg),
            m::XENMEM_CLAIM_PAGES if start != 0 => err(errno::EINVAL),
            m::XENMEM_CLAIM_PAGES => self.claim_pages(ctx, arg),
            // arch_memory_op / subarch_memory_op switch on the whole `cmd`: a start extent
            // makes any of theirs unknown (-ENOSYS).
            _ if start != 0 => self.memop_unknown(ctx, cmd),
            m::XENMEM_MEMORY_MAP => {
                // A PV dom0 has no pseudo-physical E820 (d->arch.nr_e820 == 0): "backwards
                // compatibility" -ENOSYS after reading the argument.
                match self.guest_read(ctx, arg, &mut [0u8; m::MEMORY_MAP_SIZE]) {
                    Ok(()) => err(errno::ENOSYS),
                    Err(_) => err(errno::EFAULT),
                }
            }
            m::XENMEM_MACHINE_MEMORY_MAP => self.machine_memory_map(ctx, arg),
            m::XENMEM_MACHPHYS_MAPPING => self.machphys_mapping(ctx, arg),
            m::XENMEM_MACHPHYS_MFN_LIST => self.machphys_mfn_list(ctx, arg),
            // No PV32 in Debian's build (opt_pv32 false).
            m::XENMEM_MACHPHYS_COMPAT_MFN_LIST => err(errno::EOPNOTSUPP),
            // CONFIG_MEM_SHARING off: the stubs report no shared pages.
            m::XENMEM_GET_SHARING_FREED_PAGES | m::XENMEM_GET_SHARING_SHARED_PAGES => 0,
            m::XENMEM_SET_POD_TARGET | m::XENMEM_GET_POD_TARGET => self.pod_target(ctx, arg),
            _ => self.memop_unknown(ctx, cmd),
        }
    }

    /// A sub-command we do not serve: Xen's `-ENOSYS` for the unknown ones; logged once.
    fn memop_unknown(&mut self, ctx: &Ctx, cmd: u64) -> i64 {
        self.unsupported(ctx, hc::MEMORY_OP, Some(cmd & m::MEMOP_CMD_MASK))
    }

    // ----- guest access -----

    fn guest_read(&self, ctx: &Ctx, va: u64, buf: &mut [u8]) -> Result<(), Access> {
        if !handle_okay(va) {
            return Err(Access::Hole(va));
        }
        Ok(self.ram.read_virt(ctx.cr3, va, buf)?)
    }

    /// Through `write_guest`: never into a validated pagetable (audit mode may leave a
    /// tolerated writable mapping of one), and logged.
    fn guest_write(&mut self, ctx: &Ctx, va: u64, buf: &[u8]) -> Result<(), Access> {
        if !handle_okay(va) {
            return Err(Access::Hole(va));
        }
        Ok(self.write_guest(ctx.cr3, va, buf)?)
    }

    fn read_u64(&self, ctx: &Ctx, va: u64) -> Result<u64, Access> {
        let mut b = [0u8; 8];
        self.guest_read(ctx, va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Element `i` of a `xen_pfn_t` array.
    fn list_get(&self, ctx: &Ctx, list: u64, i: u64) -> Result<u64, Access> {
        self.read_u64(ctx, list.wrapping_add(i.wrapping_mul(8)))
    }

    fn list_put(&mut self, ctx: &Ctx, list: u64, i: u64, v: u64) -> Result<(), Access> {
        self.guest_write(ctx, list.wrapping_add(i.wrapping_mul(8)), &v.to_le_bytes())
    }

    // ----- frame states -----

    fn ram_frames(&self) -> u64 {
        self.validator.nr_frames()
    }

    /// `domain_tot_pages(dom0)`: every RAM frame not in the heap (released ones included,
    /// as in Xen until their last reference goes).
    pub fn tot_pages(&self) -> u64 {
        self.ram_frames() - self.mem.free_frames() as u64
    }

    /// No reference of any kind on `mfn` (Xen: count_info holds nothing but what the caller
    /// accounts for).
    fn unreferenced(&self, mfn: u64) -> bool {
        self.validator.frame_info(mfn).is_some_and(|i| {
            i.refs == 0 && i.type_count == 0 && !i.pinned && i.tolerated_writable == 0
        }) && self.validator.current_base() != Some(mfn)
            && self.validator.user_base() != Some(mfn)
    }

    /// dom0 owns `mfn` (Xen's `get_page(page, d)` would succeed).
    fn owned(&self, mfn: u64) -> bool {
        mfn < self.ram_frames() && !self.mem.free.contains(&mfn)
    }

    fn set_m2p(&mut self, mfn: u64, pfn: u64) {
        self.xen.set_m2p(&self.ram, mfn, pfn);
        self.validator.set_m2p_entry(mfn, pfn);
    }

    /// Xen's `free_domheap_pages` for one frame: into the heap, M2P invalid.
    fn free_frame(&mut self, mfn: u64) {
        self.mem.released.remove(&mfn);
        self.mem.free.insert(mfn);
        self.set_m2p(mfn, INVALID_M2P_ENTRY);
    }

    /// Frees the released frames whose last reference has gone.
    fn reap_released(&mut self) {
        if self.mem.released.is_empty() {
            return;
        }
        let done: Vec<u64> = self
            .mem
            .released
            .iter()
            .copied()
            .filter(|&f| self.unreferenced(f))
            .collect();
        for f in done {
            self.free_frame(f);
        }
    }

    /// Xen's `alloc_domheap_pages(d, order, MEMF_bits(bits))` for one extent: the lowest
    /// naturally aligned run of 2^order free frames ending below 2^bits (`bits` 0: any).
    /// The frames leave the heap; the caller decides whose they are.
    fn alloc_extent(&mut self, order: u32, bits: u32) -> Result<u64, AllocError> {
        let n = 1u64 << order.min(MAX_ORDER);
        let tot = self.tot_pages();
        if tot + n > DOM0_MAX_PAGES {
            return Err(AllocError::OverAllocation { tot, n });
        }
        let limit = match bits {
            0 | 64.. => u64::MAX,
            b if b <= 12 => 0,
            b => 1u64 << (b - 12),
        };
        let mut from = 0u64;
        while let Some(&f) = self.mem.free.range(from..).next() {
            let c = f.div_ceil(n) * n;
            if c.saturating_add(n) > limit || c.saturating_add(n) > self.ram_frames() {
                break;
            }
            if c != f {
                from = c;
                continue;
            }
            // A frame the guest mapped although it was not its own (Xen would have refused the
            // mapping) is not handed out.
            let run = self.mem.free.range(c..c + n).count() as u64;
            if run == n && (c..c + n).all(|x| self.unreferenced(x)) {
                for x in c..c + n {
                    self.mem.free.remove(&x);
                }
                return Ok(c);
            }
            from = c + n;
        }
        Err(AllocError::NoMemory(order))
    }

    /// Gives an extent taken by `alloc_extent` back to the heap.
    fn free_extent(&mut self, first: u64, order: u32) {
        for x in first..first + (1u64 << order) {
            self.free_frame(x);
        }
    }

    // ----- increase / decrease / populate -----

    /// `XENMEM_{increase,decrease}_reservation`, `XENMEM_populate_physmap`: returns the
    /// number of extents done (including `start`), or continues.
    fn reservation_op(&mut self, ctx: &mut Ctx, a: [u64; 6], op: u64, start: u64) -> i64 {
        let arg = a[1];
        let mut b = [0u8; m::RESERVATION_SIZE];
        if self.guest_read(ctx, arg, &mut b).is_err() {
            return start as i64;
        }
        let r = MemoryReservation::from_bytes(&b);
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
            self.log.record(&json!({
                "event": "memory_op", "op": op, "from": start, "to": d.nr_done,
                "order": r.extent_order, "tot_pages": self.tot_pages(), "rip": ctx.rip,
            }));
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
    fn is_self(&self, d: u16) -> bool {
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
    fn subrange_okay(list: u64, first: u64, last: u64) -> bool {
        let count = last.wrapping_sub(first).wrapping_add(1);
        count < u64::MAX / 8 && handle_okay(list.wrapping_add(first.wrapping_mul(8)))
    }

    /// Per-extent preemption, Xen's `i != a->nr_done && hypercall_preempt_check()`; an
    /// extent of 2^order pages counts as `max(1, 2^order / 512)` elements of work.
    fn extent_preempt(ctx: &mut Ctx, i: u64, start: u64) -> bool {
        ctx.preempt_check(i - start)
    }

    fn extent_worked(ctx: &mut Ctx, order: u32) {
        let units = (1u64 << order.min(MAX_ORDER)) / 512;
        for _ in 0..units.max(1) {
            ctx.worked();
            if ctx.work >= super::PREEMPT_BUDGET {
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
        let mut d = Done {
            nr_done: start,
            preempted: false,
        };
        if list != 0 && !Self::subrange_okay(list, start, r.nr_extents - 1) {
            return d;
        }
        if r.extent_order > MAX_ORDER {
            return d;
        }
        for i in start..r.nr_extents {
            d.nr_done = i;
            if Self::extent_preempt(ctx, i, start) {
                d.preempted = true;
                return d;
            }
            Self::extent_worked(ctx, r.extent_order);
            let mfn = match self.alloc_extent(r.extent_order, bits) {
                Ok(mfn) => mfn,
                Err(e) => {
                    log::info!("increase_reservation: extent {i}: {e}");
                    return d;
                }
            };
            // The extent is dom0's now (with an M2P entry the guest sets itself), even if
            // the guest cannot be told where it is.
            if list != 0 && self.list_put(ctx, list, i, mfn).is_err() {
                return d;
            }
        }
        d.nr_done = r.nr_extents;
        d
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
        let mut d = Done {
            nr_done: start,
            preempted: false,
        };
        if !Self::subrange_okay(list, start, r.nr_extents - 1) {
            return d;
        }
        // PoD requests are bounded by MAX_ORDER, the others by max_order(dom0): both 18.
        if r.extent_order > MAX_ORDER {
            return d;
        }
        for i in start..r.nr_extents {
            d.nr_done = i;
            if Self::extent_preempt(ctx, i, start) {
                d.preempted = true;
                return d;
            }
            Self::extent_worked(ctx, r.extent_order);
            let Ok(gpfn) = self.list_get(ctx, list, i) else {
                return d;
            };
            if pod {
                // "Disallow populating PoD pages on oneself."
                return d;
            }
            let mfn = match self.alloc_extent(r.extent_order, bits) {
                Ok(mfn) => mfn,
                Err(e) => {
                    log::info!("populate_physmap: extent {i}: {e}");
                    return d;
                }
            };
            // guest_physmap_add_page for PV: the M2P learns the new frames' pfns.
            for k in 0..1u64 << r.extent_order {
                self.set_m2p(mfn + k, gpfn.wrapping_add(k));
            }
            if self.list_put(ctx, list, i, mfn).is_err() {
                return d;
            }
        }
        d.nr_done = r.nr_extents;
        d
    }

    fn decrease_reservation(&mut self, ctx: &mut Ctx, r: &MemoryReservation, start: u64) -> Done {
        let list = r.extent_start;
        let mut d = Done {
            nr_done: start,
            preempted: false,
        };
        if !Self::subrange_okay(list, start, r.nr_extents - 1) || r.extent_order > MAX_ORDER {
            return d;
        }
        for i in start..r.nr_extents {
            d.nr_done = i;
            if Self::extent_preempt(ctx, i, start) {
                d.preempted = true;
                return d;
            }
            Self::extent_worked(ctx, r.extent_order);
            let Ok(gmfn) = self.list_get(ctx, list, i) else {
                return d;
            };
            for j in 0..1u64 << r.extent_order {
                if let Err(e) = self.guest_remove_page(gmfn.wrapping_add(j)) {
                    log::info!("decrease_reservation: extent {i}: {e}");
                    return d;
                }
            }
        }
        d.nr_done = r.nr_extents;
        d
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

    // ----- exchange -----

    /// `XENMEM_exchange` (`memory_exchange`).
    fn exchange(&mut self, ctx: &mut Ctx, a: [u64; 6]) -> i64 {
        let arg = a[1];
        let mut b = [0u8; m::EXCHANGE_SIZE];
        if self.guest_read(ctx, arg, &mut b).is_err() {
            return err(errno::EFAULT);
        }
        let input = MemoryReservation::from_bytes(b[..32].try_into().expect("32"));
        let output = MemoryReservation::from_bytes(b[32..64].try_into().expect("32"));
        let mut nr_exchanged = u64::from_le_bytes(b[64..72].try_into().expect("8"));
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
        self.log.record(&json!({
            "event": "memory_op", "op": m::XENMEM_EXCHANGE, "from": nr_exchanged,
            "to": input.nr_extents, "rip": ctx.rip,
        }));
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

    // ----- queries -----

    fn reservation_query(&mut self, ctx: &Ctx, op: u64, arg: u64) -> i64 {
        let mut b = [0u8; 2];
        if self.guest_read(ctx, arg, &mut b).is_err() {
            return err(errno::EFAULT);
        }
        if !self.is_self(u16::from_le_bytes(b)) {
            return err(errno::ESRCH);
        }
        match op {
            m::XENMEM_CURRENT_RESERVATION => self.tot_pages() as i64,
            m::XENMEM_MAXIMUM_RESERVATION => DOM0_MAX_PAGES as i64,
            // domain_get_maximum_gpfn: (shared_info.arch.max_pfn ?: 1) - 1.
            _ => {
                let gpa = (self.xen.shared_info_mfn() << 12) + m::SHARED_INFO_ARCH_MAX_PFN as u64;
                let max_pfn = self.ram.read_u64_phys(gpa).unwrap_or(0);
                (max_pfn.max(1) - 1) as i64
            }
        }
    }

    /// `XENMEM_claim_pages` (dom0 is privileged: `domain_set_outstanding_pages`).
    fn claim_pages(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let mut b = [0u8; m::RESERVATION_SIZE];
        if self.guest_read(ctx, arg, &mut b).is_err() {
            return err(errno::EFAULT);
        }
        let r = MemoryReservation::from_bytes(&b);
        if r.extent_start != 0 || r.extent_order != 0 || r.mem_flags != 0 {
            return err(errno::EINVAL);
        }
        // rcu_lock_domain_by_id: DOMID_SELF is not an id here.
        if r.domid != 0 {
            return err(errno::EINVAL);
        }
        // Claims are not modelled beyond Xen's checks: 0 cancels; otherwise the claim must
        // exceed tot_pages, stay within max_pages and fit the free heap.
        let pages = r.nr_extents;
        if pages == 0 {
            return 0;
        }
        if pages <= self.tot_pages() || pages > DOM0_MAX_PAGES {
            return err(errno::EINVAL);
        }
        if pages - self.tot_pages() > self.mem.free.len() as u64 {
            return err(errno::ENOMEM);
        }
        0
    }

    /// `XENMEM_{set,get}_pod_target`: dom0 is not HVM.
    fn pod_target(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let mut b = [0u8; POD_TARGET_SIZE];
        if self.guest_read(ctx, arg, &mut b).is_err() {
            return err(errno::EFAULT);
        }
        if !self.is_self(u16::from_le_bytes([b[32], b[33]])) {
            return err(errno::ESRCH);
        }
        err(errno::EINVAL)
    }

    /// `XENMEM_machphys_mapping`: the read-only M2P; a hardware domain without memory
    /// hotplug sees `max_mfn = max_page - 1`. Deviation: the range named is the M2P's alias
    /// (XenLayout::m2p_alias_va), because this project's hosts refuse guest accesses to L4
    /// slot 256 where Xen puts it; the M2P is mapped at both places.
    fn machphys_mapping(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let mut b = [0u8; m::MACHPHYS_MAPPING_SIZE];
        let start = self.xen.m2p_alias_va();
        let len = x86::MACH2PHYS_VIRT_END - x86::MACH2PHYS_VIRT_START;
        b[..8].copy_from_slice(&start.to_le_bytes());
        b[8..16].copy_from_slice(&(start + len).to_le_bytes());
        b[16..].copy_from_slice(&(self.xen.max_page() - 1).to_le_bytes());
        match self.guest_write(ctx, arg, &b) {
            Ok(()) => 0,
            Err(_) => err(errno::EFAULT),
        }
    }

    /// `XENMEM_machphys_mfn_list`: one mfn per 2 MiB of M2P covering `max_page` entries.
    fn machphys_mfn_list(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let mut b = [0u8; m::MFN_LIST_SIZE];
        if self.guest_read(ctx, arg, &mut b).is_err() {
            return err(errno::EFAULT);
        }
        let max = u32::from_le_bytes(b[..4].try_into().expect("4"));
        let list = u64::from_le_bytes(b[8..16].try_into().expect("8"));
        // 2 MiB of M2P = 256Ki entries.
        let chunks = self.xen.max_page().div_ceil(1 << 18);
        let mut i = 0u32;
        let mut last = 0u64;
        while i != max && u64::from(i) < chunks {
            let mfn = self.xen.m2p_chunk_mfn(u64::from(i)).unwrap_or(last);
            if self.list_put(ctx, list, u64::from(i), mfn).is_err() {
                return err(errno::EFAULT);
            }
            last = mfn;
            i += 1;
        }
        let off = arg.wrapping_add(m::MFN_LIST_NR_EXTENTS as u64);
        match self.guest_write(ctx, off, &i.to_le_bytes()) {
            Ok(()) => 0,
            Err(_) => err(errno::EFAULT),
        }
    }

    /// `XENMEM_machine_memory_map` for dom0: the host's E820 is one RAM range over our RAM
    /// and the Xen area (Xen's own memory is host RAM too); dom0 may access all I/O memory
    /// above it, so no reserved ranges are added. As Xen: a buffer must have room for one
    /// entry more than the host map, and the count is written back.
    fn machine_memory_map(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let mut b = [0u8; m::MEMORY_MAP_SIZE];
        if self.guest_read(ctx, arg, &mut b).is_err() {
            return err(errno::EFAULT);
        }
        let nr_entries = u32::from_le_bytes(b[..4].try_into().expect("4"));
        let buffer = u64::from_le_bytes(b[8..16].try_into().expect("8"));
        let host: [(u64, u64, u32); 1] = [(0, self.xen.max_page() << 12, E820_RAM)];
        let store = buffer != 0;
        if store && u64::from(nr_entries) < host.len() as u64 + 1 {
            return err(errno::EINVAL);
        }
        if store && !handle_okay(buffer) {
            return err(errno::EFAULT);
        }
        if store {
            for (n, &(addr, size, ty)) in host.iter().enumerate() {
                let mut e = [0u8; E820_ENTRY_SIZE as usize];
                e[..8].copy_from_slice(&addr.to_le_bytes());
                e[8..16].copy_from_slice(&size.to_le_bytes());
                e[16..].copy_from_slice(&ty.to_le_bytes());
                let va = buffer.wrapping_add(n as u64 * E820_ENTRY_SIZE);
                if self.guest_write(ctx, va, &e).is_err() {
                    return err(errno::EFAULT);
                }
            }
        }
        match self.guest_write(ctx, arg, &(host.len() as u32).to_le_bytes()) {
            Ok(()) => 0,
            Err(_) => err(errno::EFAULT),
        }
    }
}

/// `propagate_node` for dom0 (hardware and control domain): a node must be below
/// MAX_NUMNODES, or no node at all.
fn propagate_node(flags: u32) -> bool {
    let node = m::xenmemf_get_node(flags);
    node == m::NUMA_NO_NODE || node < MAX_NUMNODES
}

/// `get_order_from_pages`: the smallest order with 2^order >= n.
fn order_from_pages(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

#[cfg(test)]
#[path = "memory_op_tests.rs"]
mod tests;
