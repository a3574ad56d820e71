//! `memory_op` sub-commands, flags and argument structures (memory.h, x86_64 layout).

pub const XENMEM_INCREASE_RESERVATION: u64 = 0;
pub const XENMEM_DECREASE_RESERVATION: u64 = 1;
pub const XENMEM_MAXIMUM_RAM_PAGE: u64 = 2;
pub const XENMEM_CURRENT_RESERVATION: u64 = 3;
pub const XENMEM_MAXIMUM_RESERVATION: u64 = 4;
pub const XENMEM_MACHPHYS_MFN_LIST: u64 = 5;
pub const XENMEM_POPULATE_PHYSMAP: u64 = 6;
pub const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
pub const XENMEM_MEMORY_MAP: u64 = 9;
pub const XENMEM_MACHINE_MEMORY_MAP: u64 = 10;
pub const XENMEM_EXCHANGE: u64 = 11;
pub const XENMEM_MACHPHYS_MAPPING: u64 = 12;
pub const XENMEM_SET_MEMORY_MAP: u64 = 13;
pub const XENMEM_MAXIMUM_GPFN: u64 = 14;
pub const XENMEM_REMOVE_FROM_PHYSMAP: u64 = 15;
pub const XENMEM_SET_POD_TARGET: u64 = 16;
pub const XENMEM_GET_POD_TARGET: u64 = 17;
pub const XENMEM_GET_SHARING_FREED_PAGES: u64 = 18;
pub const XENMEM_GET_SHARING_SHARED_PAGES: u64 = 19;
pub const XENMEM_PAGING_OP: u64 = 20;
pub const XENMEM_ACCESS_OP: u64 = 21;
pub const XENMEM_SHARING_OP: u64 = 22;
pub const XENMEM_ADD_TO_PHYSMAP_BATCH: u64 = 23;
pub const XENMEM_CLAIM_PAGES: u64 = 24;
pub const XENMEM_MACHPHYS_COMPAT_MFN_LIST: u64 = 25;
pub const XENMEM_GET_VNUMAINFO: u64 = 26;
pub const XENMEM_RESERVED_DEVICE_MEMORY_MAP: u64 = 27;
pub const XENMEM_ACQUIRE_RESOURCE: u64 = 28;

/// `cmd` = sub-command in the low bits, a continuation's start extent above them.
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
pub const MEMOP_CMD_MASK: u64 = (1 << MEMOP_EXTENT_SHIFT) - 1;

/// `mem_flags`: address bits in 0..8, node + 1 in 8..16, then single flags.
pub const XENMEMF_POPULATE_ON_DEMAND: u32 = 1 << 16;
pub const XENMEMF_EXACT_NODE_REQUEST: u32 = 1 << 17;
pub const XENMEMF_VNODE: u32 = 1 << 18;
/// `XENMEMF_get_node(0)`: no node asked for (`NUMA_NO_NODE`).
pub const NUMA_NO_NODE: u32 = 0xff;

/// `XENMEMF_get_address_bits`.
pub const fn xenmemf_get_address_bits(f: u32) -> u32 {
    f & 0xff
}
/// `XENMEMF_get_node`.
pub const fn xenmemf_get_node(f: u32) -> u32 {
    (f >> 8).wrapping_sub(1) & 0xff
}

/// Byte offset of `shared_info.arch.max_pfn` (what `XENMEM_maximum_gpfn` reports, minus 1).
pub const SHARED_INFO_ARCH_MAX_PFN: usize = 3088;

/// `struct xen_memory_reservation`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryReservation {
    pub extent_start: u64,
    pub nr_extents: u64,
    pub extent_order: u32,
    pub mem_flags: u32,
    pub domid: u16,
    pub _pad: [u8; 6],
}

/// `struct xen_memory_exchange`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryExchange {
    pub input: MemoryReservation,
    pub output: MemoryReservation,
    pub nr_exchanged: u64,
}

/// `struct xen_memory_map` (also `XENMEM_machine_memory_map`'s argument).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryMap {
    pub nr_entries: u32,
    pub _pad: u32,
    pub buffer: u64,
}

/// `struct xen_machphys_mapping`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachphysMapping {
    pub v_start: u64,
    pub v_end: u64,
    pub max_mfn: u64,
}

/// `struct xen_machphys_mfn_list`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachphysMfnList {
    pub max_extents: u32,
    pub _pad0: u32,
    pub extent_start: u64,
    pub nr_extents: u32,
    pub _pad1: u32,
}

/// Byte offsets of the fields the hypervisor writes back.
pub const RESERVATION_SIZE: usize = 32;
pub const EXCHANGE_NR_EXCHANGED: usize = 64;
pub const EXCHANGE_SIZE: usize = 72;
pub const MEMORY_MAP_SIZE: usize = 16;
pub const MACHPHYS_MAPPING_SIZE: usize = 24;
pub const MFN_LIST_NR_EXTENTS: usize = 16;
pub const MFN_LIST_SIZE: usize = 24;

const _: () = assert!(core::mem::size_of::<MemoryReservation>() == RESERVATION_SIZE);
const _: () = assert!(core::mem::size_of::<MemoryExchange>() == EXCHANGE_SIZE);
const _: () = assert!(core::mem::offset_of!(MemoryExchange, nr_exchanged) == EXCHANGE_NR_EXCHANGED);
const _: () = assert!(core::mem::size_of::<MemoryMap>() == MEMORY_MAP_SIZE);
const _: () = assert!(core::mem::size_of::<MachphysMapping>() == MACHPHYS_MAPPING_SIZE);
const _: () = assert!(core::mem::offset_of!(MachphysMfnList, nr_extents) == MFN_LIST_NR_EXTENTS);
const _: () = assert!(core::mem::size_of::<MachphysMfnList>() == MFN_LIST_SIZE);
