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
//!
//! The files: this one holds the model's state, the `memory_op` dispatch, guest access and
//! the frame states; `reservation` increase/decrease_reservation and populate_physmap;
//! `exchange` XENMEM_exchange; `queries` the sub-ops that report or claim (maximum and
//! current reservation, claim_pages, pod_target, the M2P, the machine memory map).

use super::{err, handle_okay, Ctx, Hypervisor};
use crate::memory::Fault;
use pagetable_validator::abi::memory as m;
use pagetable_validator::abi::{errno, hypercall as hc};
use pagetable_validator::Mfn;
use std::collections::BTreeSet;
use vm_memory::ByteValued;

mod exchange;
mod queries;
mod reservation;
#[cfg(test)]
mod tests;

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

impl Done {
    /// Extents before `nr_done` done, not preempted.
    fn at(nr_done: u64) -> Done {
        Done {
            nr_done,
            preempted: false,
        }
    }
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

    /// A guest structure (an abi type) at `va`.
    fn guest_obj<T: ByteValued + Default>(&self, ctx: &Ctx, va: u64) -> Result<T, Access> {
        let mut t = T::default();
        self.guest_read(ctx, va, t.as_mut_slice())?;
        Ok(t)
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
        let mfn = Mfn(mfn);
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
        self.validator.set_m2p_entry(Mfn(mfn), pfn);
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
