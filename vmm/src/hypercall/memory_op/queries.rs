//! The sub-ops that report or claim rather than move frames: the reservation queries,
//! claim_pages, pod_target, the M2P's mapping and frames, the machine memory map.

use super::{DOM0_MAX_PAGES, E820_ENTRY_SIZE, E820_RAM, POD_TARGET_SIZE};
use crate::hypercall::{err, handle_okay, Ctx, Hypervisor};
use pagetable_validator::abi::memory::{self as m, MemoryReservation};
use pagetable_validator::abi::{errno, x86};

impl Hypervisor {
    // ----- queries -----

    pub(super) fn reservation_query(&mut self, ctx: &Ctx, op: u64, arg: u64) -> i64 {
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
    pub(super) fn claim_pages(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let Ok(r) = self.guest_obj::<MemoryReservation>(ctx, arg) else {
            return err(errno::EFAULT);
        };
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
    pub(super) fn pod_target(&mut self, ctx: &Ctx, arg: u64) -> i64 {
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
    pub(super) fn machphys_mapping(&mut self, ctx: &Ctx, arg: u64) -> i64 {
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
    pub(super) fn machphys_mfn_list(&mut self, ctx: &Ctx, arg: u64) -> i64 {
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
    pub(super) fn machine_memory_map(&mut self, ctx: &Ctx, arg: u64) -> i64 {
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
