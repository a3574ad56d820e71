//! Xen's public PV ABI for x86_64, as far as this project uses it.
//!
//! This is the project's single copy of Xen's constants and structure layouts.
//! Every value mirrors `xen/include/public/{xen.h,sched.h,version.h,elfnote.h}`;
//! `tests/abi_layout.rs` checks each one against the real headers from Debian's
//! `libxen-dev`. `no_std`, no dependencies: the guest kernel uses it too.

/// Hypercall numbers (`__HYPERVISOR_*`, xen.h).
pub mod hypercall {
    pub const SET_TRAP_TABLE: u64 = 0;
    pub const MMU_UPDATE: u64 = 1;
    pub const SET_GDT: u64 = 2;
    pub const STACK_SWITCH: u64 = 3;
    pub const SET_CALLBACKS: u64 = 4;
    pub const FPU_TASKSWITCH: u64 = 5;
    pub const SCHED_OP_COMPAT: u64 = 6;
    pub const PLATFORM_OP: u64 = 7;
    pub const SET_DEBUGREG: u64 = 8;
    pub const GET_DEBUGREG: u64 = 9;
    pub const UPDATE_DESCRIPTOR: u64 = 10;
    pub const MEMORY_OP: u64 = 12;
    pub const MULTICALL: u64 = 13;
    pub const UPDATE_VA_MAPPING: u64 = 14;
    pub const SET_TIMER_OP: u64 = 15;
    pub const EVENT_CHANNEL_OP_COMPAT: u64 = 16;
    pub const XEN_VERSION: u64 = 17;
    pub const CONSOLE_IO: u64 = 18;
    pub const PHYSDEV_OP_COMPAT: u64 = 19;
    pub const GRANT_TABLE_OP: u64 = 20;
    pub const VM_ASSIST: u64 = 21;
    pub const UPDATE_VA_MAPPING_OTHERDOMAIN: u64 = 22;
    pub const IRET: u64 = 23;
    pub const VCPU_OP: u64 = 24;
    pub const SET_SEGMENT_BASE: u64 = 25;
    pub const MMUEXT_OP: u64 = 26;
    pub const XSM_OP: u64 = 27;
    pub const NMI_OP: u64 = 28;
    pub const SCHED_OP: u64 = 29;
    pub const CALLBACK_OP: u64 = 30;
    pub const XENOPROF_OP: u64 = 31;
    pub const EVENT_CHANNEL_OP: u64 = 32;
    pub const PHYSDEV_OP: u64 = 33;
    pub const HVM_OP: u64 = 34;
    pub const SYSCTL: u64 = 35;
    pub const DOMCTL: u64 = 36;
    pub const KEXEC_OP: u64 = 37;

    /// The hypercall page holds one 32-byte stub per hypercall number.
    pub const STUB_SIZE: u64 = 32;
    /// Number of stubs that fit in the 4 KiB hypercall page.
    pub const NR_STUBS: u64 = 4096 / STUB_SIZE;

    /// Short name for logs and summaries; `None` for a number Xen 4.17 does not define here.
    pub fn name(nr: u64) -> Option<&'static str> {
        Some(match nr {
            SET_TRAP_TABLE => "set_trap_table",
            MMU_UPDATE => "mmu_update",
            SET_GDT => "set_gdt",
            STACK_SWITCH => "stack_switch",
            SET_CALLBACKS => "set_callbacks",
            FPU_TASKSWITCH => "fpu_taskswitch",
            SCHED_OP_COMPAT => "sched_op_compat",
            PLATFORM_OP => "platform_op",
            SET_DEBUGREG => "set_debugreg",
            GET_DEBUGREG => "get_debugreg",
            UPDATE_DESCRIPTOR => "update_descriptor",
            MEMORY_OP => "memory_op",
            MULTICALL => "multicall",
            UPDATE_VA_MAPPING => "update_va_mapping",
            SET_TIMER_OP => "set_timer_op",
            XEN_VERSION => "xen_version",
            CONSOLE_IO => "console_io",
            GRANT_TABLE_OP => "grant_table_op",
            VM_ASSIST => "vm_assist",
            IRET => "iret",
            VCPU_OP => "vcpu_op",
            SET_SEGMENT_BASE => "set_segment_base",
            MMUEXT_OP => "mmuext_op",
            NMI_OP => "nmi_op",
            SCHED_OP => "sched_op",
            CALLBACK_OP => "callback_op",
            EVENT_CHANNEL_OP => "event_channel_op",
            PHYSDEV_OP => "physdev_op",
            _ => return None,
        })
    }
}

/// `mmu_update` request commands: the low two bits of `mmu_update.ptr`.
pub mod mmu {
    pub const NORMAL_PT_UPDATE: u64 = 0;
    pub const MACHPHYS_UPDATE: u64 = 1;
    pub const PT_UPDATE_PRESERVE_AD: u64 = 2;
    pub const PT_UPDATE_NO_TRANSLATE: u64 = 3;
    /// Mask of the command bits in `ptr`.
    pub const CMD_MASK: u64 = 3;
    /// `MMU_UPDATE_PREEMPTED` (Xen's mm.c): the continuation marker in `count` (the rest is
    /// the count left).
    pub const UPDATE_PREEMPTED: u64 = 1 << 31;
}

/// `mmuext_op` commands (`MMUEXT_*`).
pub mod mmuext {
    pub const PIN_L1_TABLE: u32 = 0;
    pub const PIN_L2_TABLE: u32 = 1;
    pub const PIN_L3_TABLE: u32 = 2;
    pub const PIN_L4_TABLE: u32 = 3;
    pub const UNPIN_TABLE: u32 = 4;
    pub const NEW_BASEPTR: u32 = 5;
    pub const TLB_FLUSH_LOCAL: u32 = 6;
    pub const INVLPG_LOCAL: u32 = 7;
    pub const TLB_FLUSH_MULTI: u32 = 8;
    pub const INVLPG_MULTI: u32 = 9;
    pub const TLB_FLUSH_ALL: u32 = 10;
    pub const INVLPG_ALL: u32 = 11;
    pub const FLUSH_CACHE: u32 = 12;
    pub const SET_LDT: u32 = 13;
    pub const NEW_USER_BASEPTR: u32 = 15;
    pub const CLEAR_PAGE: u32 = 16;
    pub const COPY_PAGE: u32 = 17;
    pub const FLUSH_CACHE_GLOBAL: u32 = 18;
    pub const MARK_SUPER: u32 = 19;
    pub const UNMARK_SUPER: u32 = 20;
}

/// `update_va_mapping` flags (`UVMF_*`).
pub mod uvmf {
    pub const NONE: u64 = 0;
    pub const TLB_FLUSH: u64 = 1;
    pub const INVLPG: u64 = 2;
    pub const FLUSHTYPE_MASK: u64 = 3;
    pub const MULTI: u64 = 0;
    pub const LOCAL: u64 = 0;
    pub const ALL: u64 = 4;
}

/// `sched_op` commands and shutdown reasons (sched.h).
pub mod sched {
    pub const SCHEDOP_YIELD: u64 = 0;
    pub const SCHEDOP_BLOCK: u64 = 1;
    pub const SCHEDOP_SHUTDOWN: u64 = 2;
    pub const SCHEDOP_POLL: u64 = 3;
    pub const SCHEDOP_REMOTE_SHUTDOWN: u64 = 4;
    pub const SCHEDOP_SHUTDOWN_CODE: u64 = 5;
    pub const SCHEDOP_WATCHDOG: u64 = 6;

    pub const SHUTDOWN_POWEROFF: u32 = 0;
    pub const SHUTDOWN_REBOOT: u32 = 1;
    pub const SHUTDOWN_SUSPEND: u32 = 2;
    pub const SHUTDOWN_CRASH: u32 = 3;
    pub const SHUTDOWN_WATCHDOG: u32 = 4;
}

/// `console_io` commands (`CONSOLEIO_*`).
pub mod console {
    pub const CONSOLEIO_WRITE: u64 = 0;
    pub const CONSOLEIO_READ: u64 = 1;
}

/// `xen_version` commands (version.h).
pub mod version {
    pub const XENVER_VERSION: u64 = 0;
    pub const XENVER_EXTRAVERSION: u64 = 1;
    pub const XENVER_COMPILE_INFO: u64 = 2;
    pub const XENVER_CAPABILITIES: u64 = 3;
    pub const XENVER_CHANGESET: u64 = 4;
    pub const XENVER_PLATFORM_PARAMETERS: u64 = 5;
    pub const XENVER_GET_FEATURES: u64 = 6;
    pub const XENVER_PAGESIZE: u64 = 7;
    pub const XENVER_GUEST_HANDLE: u64 = 8;
    pub const XENVER_COMMANDLINE: u64 = 9;
    pub const XENVER_BUILD_ID: u64 = 10;
    /// `xen_extraversion_t` is 16 bytes.
    pub const EXTRAVERSION_LEN: usize = 16;
}

/// `memory_op` sub-commands, flags and argument structures (memory.h, x86_64 layout).
pub mod memory {
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
    const _: () =
        assert!(core::mem::offset_of!(MemoryExchange, nr_exchanged) == EXCHANGE_NR_EXCHANGED);
    const _: () = assert!(core::mem::size_of::<MemoryMap>() == MEMORY_MAP_SIZE);
    const _: () = assert!(core::mem::size_of::<MachphysMapping>() == MACHPHYS_MAPPING_SIZE);
    const _: () =
        assert!(core::mem::offset_of!(MachphysMfnList, nr_extents) == MFN_LIST_NR_EXTENTS);
    const _: () = assert!(core::mem::size_of::<MachphysMfnList>() == MFN_LIST_SIZE);
}

/// `grant_table_op` (grant_table.h): sub-ops, status codes, flags and the layouts of the
/// argument structures as byte offsets (`<STRUCT>_<FIELD>`, `<STRUCT>_SIZE`).
pub mod gnttab {
    pub const GNTTABOP_MAP_GRANT_REF: u32 = 0;
    pub const GNTTABOP_UNMAP_GRANT_REF: u32 = 1;
    pub const GNTTABOP_SETUP_TABLE: u32 = 2;
    pub const GNTTABOP_DUMP_TABLE: u32 = 3;
    pub const GNTTABOP_TRANSFER: u32 = 4;
    pub const GNTTABOP_COPY: u32 = 5;
    pub const GNTTABOP_QUERY_SIZE: u32 = 6;
    pub const GNTTABOP_UNMAP_AND_REPLACE: u32 = 7;
    pub const GNTTABOP_SET_VERSION: u32 = 8;
    pub const GNTTABOP_GET_STATUS_FRAMES: u32 = 9;
    pub const GNTTABOP_GET_VERSION: u32 = 10;
    pub const GNTTABOP_SWAP_GRANT_REF: u32 = 11;
    pub const GNTTABOP_CACHE_FLUSH: u32 = 12;

    pub const GNTST_OKAY: i16 = 0;
    pub const GNTST_GENERAL_ERROR: i16 = -1;
    pub const GNTST_BAD_DOMAIN: i16 = -2;
    pub const GNTST_BAD_GNTREF: i16 = -3;
    pub const GNTST_BAD_HANDLE: i16 = -4;
    pub const GNTST_BAD_VIRT_ADDR: i16 = -5;
    pub const GNTST_PERMISSION_DENIED: i16 = -8;
    pub const GNTST_BAD_PAGE: i16 = -9;
    pub const GNTST_BAD_COPY_ARG: i16 = -10;
    pub const GNTST_EAGAIN: i16 = -12;

    pub const GNTMAP_DEVICE_MAP: u32 = 1 << 0;
    pub const GNTMAP_HOST_MAP: u32 = 1 << 1;
    pub const GNTMAP_READONLY: u32 = 1 << 2;
    pub const GNTCOPY_SOURCE_GREF: u16 = 1 << 0;
    pub const GNTCOPY_DEST_GREF: u16 = 1 << 1;
    pub const GNTTAB_CACHE_CLEAN: u32 = 1 << 0;
    pub const GNTTAB_CACHE_INVAL: u32 = 1 << 1;
    pub const GNTTAB_CACHE_SOURCE_GREF: u32 = 1 << 31;

    /// Grant entry flags (`GTF_*`).
    pub const GTF_PERMIT_ACCESS: u16 = 1;
    pub const GTF_TYPE_MASK: u16 = 3;
    pub const GTF_READONLY: u16 = 1 << 2;
    pub const GTF_SUB_PAGE: u16 = 1 << 8;
    pub const GTF_TRANSITIVE: u16 = 3;
    pub const GTF_READING: u16 = 1 << 3;
    pub const GTF_WRITING: u16 = 1 << 4;
    /// Xen's `GNTTABOP_CONTINUATION_ARG_SHIFT` (common/grant_table.c): the sub-op is the low 12
    /// bits of `cmd`; the bits above carry `cache_flush`'s continuation state.
    pub const GNTTABOP_CMD_MASK: u32 = (1 << 12) - 1;
    /// Entries 0..8 are the toolstack's; `set_version` preserves them.
    pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
    /// `sizeof(grant_entry_v1_t)`, `sizeof(grant_entry_v2_t)`, `sizeof(grant_status_t)`.
    pub const ENTRY_V1_SIZE: u64 = 8;
    pub const ENTRY_V2_SIZE: u64 = 16;
    pub const STATUS_SIZE: u64 = 2;

    pub const MAP_GRANT_REF_SIZE: u64 = 32;
    pub const MAP_GRANT_REF_FLAGS: u64 = 8;
    pub const MAP_GRANT_REF_REF: u64 = 12;
    pub const MAP_GRANT_REF_DOM: u64 = 16;
    pub const MAP_GRANT_REF_STATUS: u64 = 18;
    pub const UNMAP_GRANT_REF_SIZE: u64 = 24;
    pub const UNMAP_GRANT_REF_HANDLE: u64 = 16;
    pub const UNMAP_GRANT_REF_STATUS: u64 = 20;
    pub const UNMAP_AND_REPLACE_SIZE: u64 = 24;
    pub const UNMAP_AND_REPLACE_HANDLE: u64 = 16;
    pub const UNMAP_AND_REPLACE_STATUS: u64 = 20;
    pub const SETUP_TABLE_SIZE: u64 = 24;
    pub const SETUP_TABLE_NR_FRAMES: u64 = 4;
    pub const SETUP_TABLE_STATUS: u64 = 8;
    pub const SETUP_TABLE_FRAME_LIST: u64 = 16;
    pub const TRANSFER_SIZE: u64 = 24;
    pub const TRANSFER_DOMID: u64 = 8;
    pub const TRANSFER_STATUS: u64 = 16;
    pub const COPY_SIZE: u64 = 40;
    pub const COPY_SOURCE: u64 = 0;
    pub const COPY_DEST: u64 = 16;
    pub const COPY_PTR_DOMID: u64 = 8;
    pub const COPY_PTR_OFFSET: u64 = 10;
    pub const COPY_LEN: u64 = 32;
    pub const COPY_FLAGS: u64 = 34;
    pub const COPY_STATUS: u64 = 36;
    pub const QUERY_SIZE_SIZE: u64 = 16;
    pub const QUERY_SIZE_NR_FRAMES: u64 = 4;
    pub const QUERY_SIZE_MAX_NR_FRAMES: u64 = 8;
    pub const QUERY_SIZE_STATUS: u64 = 12;
    pub const SET_VERSION_SIZE: u64 = 4;
    pub const GET_STATUS_FRAMES_SIZE: u64 = 16;
    pub const GET_STATUS_FRAMES_DOM: u64 = 4;
    pub const GET_STATUS_FRAMES_STATUS: u64 = 6;
    pub const GET_STATUS_FRAMES_FRAME_LIST: u64 = 8;
    pub const GET_VERSION_SIZE: u64 = 8;
    pub const GET_VERSION_VERSION: u64 = 4;
    pub const SWAP_GRANT_REF_SIZE: u64 = 12;
    pub const SWAP_GRANT_REF_REF_B: u64 = 4;
    pub const SWAP_GRANT_REF_STATUS: u64 = 8;
    pub const CACHE_FLUSH_SIZE: u64 = 16;
    pub const CACHE_FLUSH_OFFSET: u64 = 8;
    pub const CACHE_FLUSH_LENGTH: u64 = 10;
    pub const CACHE_FLUSH_OP: u64 = 12;
}

/// `physdev_op` (physdev.h): sub-ops, flags and argument layouts as byte offsets.
pub mod physdev {
    pub const PHYSDEVOP_EOI: u32 = 12;
    pub const PHYSDEVOP_PIRQ_EOI_GMFN_V1: u32 = 17;
    pub const PHYSDEVOP_PIRQ_EOI_GMFN_V2: u32 = 28;
    pub const PHYSDEVOP_IRQ_STATUS_QUERY: u32 = 5;
    pub const PHYSDEVOP_SET_IOPL: u32 = 6;
    /// Legacy, only visible to old interface versions.
    pub const PHYSDEVOP_IRQ_UNMASK_NOTIFY: u32 = 4;
    pub const PHYSDEVOP_SET_IOBITMAP: u32 = 7;
    pub const PHYSDEVOP_APIC_READ: u32 = 8;
    pub const PHYSDEVOP_APIC_WRITE: u32 = 9;
    pub const PHYSDEVOP_ALLOC_IRQ_VECTOR: u32 = 10;
    pub const PHYSDEVOP_FREE_IRQ_VECTOR: u32 = 11;
    pub const PHYSDEVOP_MAP_PIRQ: u32 = 13;
    pub const PHYSDEVOP_UNMAP_PIRQ: u32 = 14;
    pub const PHYSDEVOP_MANAGE_PCI_ADD: u32 = 15;
    pub const PHYSDEVOP_MANAGE_PCI_REMOVE: u32 = 16;
    pub const PHYSDEVOP_RESTORE_MSI: u32 = 19;
    pub const PHYSDEVOP_MANAGE_PCI_ADD_EXT: u32 = 20;
    pub const PHYSDEVOP_SETUP_GSI: u32 = 21;
    pub const PHYSDEVOP_GET_FREE_PIRQ: u32 = 23;
    pub const PHYSDEVOP_PCI_MMCFG_RESERVED: u32 = 24;
    pub const PHYSDEVOP_PCI_DEVICE_ADD: u32 = 25;
    pub const PHYSDEVOP_PCI_DEVICE_REMOVE: u32 = 26;
    pub const PHYSDEVOP_RESTORE_MSI_EXT: u32 = 27;
    pub const PHYSDEVOP_DBGP_OP: u32 = 29;
    pub const PHYSDEVOP_PREPARE_MSIX: u32 = 30;
    pub const PHYSDEVOP_RELEASE_MSIX: u32 = 31;

    pub const MAP_PIRQ_TYPE_MSI: i32 = 0;
    pub const MAP_PIRQ_TYPE_GSI: i32 = 1;
    pub const MAP_PIRQ_TYPE_MSI_SEG: i32 = 3;
    pub const MAP_PIRQ_TYPE_MULTI_MSI: i32 = 4;
    pub const XENIRQSTAT_NEEDS_EOI: u32 = 1;
    pub const XEN_PCI_DEV_VIRTFN: u32 = 2;
    pub const XEN_PCI_DEV_PXM: u32 = 4;
    pub const XEN_PCI_MMCFG_RESERVED: u32 = 1;

    pub const IRQ_STATUS_QUERY_SIZE: u64 = 8;
    pub const IRQ_STATUS_QUERY_FLAGS: u64 = 4;
    pub const SET_IOBITMAP_SIZE: u64 = 16;
    pub const SET_IOBITMAP_NR_PORTS: u64 = 8;
    pub const APIC_SIZE: u64 = 16;
    pub const APIC_VALUE: u64 = 12;
    pub const IRQ_SIZE: u64 = 8;
    pub const IRQ_VECTOR: u64 = 4;
    pub const MAP_PIRQ_SIZE: u64 = 40;
    pub const MAP_PIRQ_TYPE: u64 = 4;
    pub const MAP_PIRQ_INDEX: u64 = 8;
    pub const MAP_PIRQ_PIRQ: u64 = 12;
    pub const MAP_PIRQ_BUS: u64 = 16;
    pub const MAP_PIRQ_ENTRY_NR: u64 = 24;
    pub const MAP_PIRQ_TABLE_BASE: u64 = 32;
    pub const UNMAP_PIRQ_SIZE: u64 = 8;
    pub const UNMAP_PIRQ_PIRQ: u64 = 4;
    pub const MANAGE_PCI_SIZE: u64 = 2;
    pub const MANAGE_PCI_EXT_SIZE: u64 = 16;
    pub const MANAGE_PCI_EXT_IS_EXTFN: u64 = 4;
    pub const MANAGE_PCI_EXT_IS_VIRTFN: u64 = 8;
    pub const MANAGE_PCI_EXT_PHYSFN: u64 = 12;
    pub const PCI_DEVICE_ADD_SIZE: u64 = 12;
    pub const PCI_DEVICE_ADD_FLAGS: u64 = 4;
    pub const PCI_DEVICE_ADD_PHYSFN: u64 = 8;
    pub const PCI_DEVICE_ADD_OPTARR: u64 = 12;
    pub const PCI_DEVICE_SIZE: u64 = 4;
    pub const SETUP_GSI_SIZE: u64 = 8;
    pub const GET_FREE_PIRQ_SIZE: u64 = 8;
    pub const GET_FREE_PIRQ_PIRQ: u64 = 4;
    pub const PCI_MMCFG_RESERVED_SIZE: u64 = 16;
    pub const PCI_MMCFG_RESERVED_FLAGS: u64 = 12;
    pub const DBGP_OP_SIZE: u64 = 6;
}

/// `platform_op` (platform.h): commands and the `xen_platform_op` layout as byte offsets
/// (`U` is where the union starts; the sub-structures' offsets are within it).
pub mod platform {
    pub const XENPF_INTERFACE_VERSION: u32 = 0x0300_0001;
    pub const XENPF_SETTIME32: u32 = 17;
    pub const XENPF_SETTIME64: u32 = 62;
    pub const XENPF_ADD_MEMTYPE: u32 = 31;
    pub const XENPF_DEL_MEMTYPE: u32 = 32;
    pub const XENPF_READ_MEMTYPE: u32 = 33;
    pub const XENPF_MICROCODE_UPDATE: u32 = 35;
    pub const XENPF_PLATFORM_QUIRK: u32 = 39;
    pub const XENPF_EFI_RUNTIME_CALL: u32 = 49;
    pub const XENPF_FIRMWARE_INFO: u32 = 50;
    pub const XENPF_ENTER_ACPI_SLEEP: u32 = 51;
    pub const XENPF_CHANGE_FREQ: u32 = 52;
    pub const XENPF_GETIDLETIME: u32 = 53;
    pub const XENPF_SET_PROCESSOR_PMINFO: u32 = 54;
    pub const XENPF_GET_CPUINFO: u32 = 55;
    pub const XENPF_GET_CPU_VERSION: u32 = 48;
    pub const XENPF_CPU_ONLINE: u32 = 56;
    pub const XENPF_CPU_OFFLINE: u32 = 57;
    pub const XENPF_CPU_HOTADD: u32 = 58;
    pub const XENPF_MEM_HOTADD: u32 = 59;
    pub const XENPF_CORE_PARKING: u32 = 60;
    pub const XENPF_RESOURCE_OP: u32 = 61;
    pub const XENPF_GET_SYMBOL: u32 = 63;

    pub const XEN_FW_DISK_INFO: u32 = 1;
    pub const XEN_FW_DISK_MBR_SIGNATURE: u32 = 2;
    pub const XEN_FW_VBEDDC_INFO: u32 = 3;
    pub const XEN_FW_EFI_INFO: u32 = 4;
    pub const XEN_FW_KBD_SHIFT_FLAGS: u32 = 5;
    pub const XENPF_ACPI_SLEEP_EXTENDED: u32 = 1;
    pub const XEN_PCPU_FLAGS_ONLINE: u32 = 1;
    pub const XEN_PCPU_FLAGS_INVALID: u32 = 2;
    /// `ACPI_STATE_S3` (Xen's acpi headers; the sleep state the guest names).
    pub const ACPI_STATE_S3: u32 = 3;

    pub const OP_SIZE: u64 = 136;
    pub const OP_INTERFACE_VERSION: u64 = 4;
    pub const OP_U: u64 = 8;
    pub const SETTIME32_NSECS: u64 = 4;
    pub const SETTIME32_SYSTEM_TIME: u64 = 8;
    pub const SETTIME64_NSECS: u64 = 8;
    pub const SETTIME64_MBZ: u64 = 12;
    pub const SETTIME64_SYSTEM_TIME: u64 = 16;
    pub const FIRMWARE_INFO_INDEX: u64 = 4;
    pub const FIRMWARE_INFO_U: u64 = 8;
    pub const ENTER_ACPI_SLEEP_SLEEP_STATE: u64 = 4;
    pub const ENTER_ACPI_SLEEP_FLAGS: u64 = 8;
    pub const PCPUINFO_SIZE: u64 = 20;
    pub const PCPUINFO_MAX_PRESENT: u64 = 4;
    pub const PCPUINFO_FLAGS: u64 = 8;
    pub const PCPUINFO_APIC_ID: u64 = 12;
    pub const PCPUINFO_ACPI_ID: u64 = 16;
    pub const PCPU_VERSION_SIZE: u64 = 32;
    pub const PCPU_VERSION_MAX_PRESENT: u64 = 4;
    pub const PCPU_VERSION_VENDOR_ID: u64 = 8;
    pub const PCPU_VERSION_FAMILY: u64 = 20;
    pub const PCPU_VERSION_MODEL: u64 = 24;
    pub const PCPU_VERSION_STEPPING: u64 = 28;
}

/// `XENFEAT_*` bit numbers (features.h).
pub mod xenfeat {
    pub const PAE_PGDIR_ABOVE_4GB: u32 = 4;
    pub const MMU_PT_UPDATE_PRESERVE_AD: u32 = 5;
    pub const HIGHMEM_ASSIST: u32 = 6;
    pub const GNTTAB_MAP_AVAIL_BITS: u32 = 7;
    pub const DOM0: u32 = 11;
    pub const MEMORY_OP_VNODE_SUPPORTED: u32 = 13;
    pub const DIRECT_MAPPED: u32 = 17;
    pub const NR_SUBMAPS: u32 = 1;
}

/// Domain ids (xen.h).
pub mod domid {
    pub const DOMID_SELF: u16 = 0x7FF0;
    pub const DOMID_IO: u16 = 0x7FF1;
    pub const DOMID_XEN: u16 = 0x7FF2;
    pub const DOMID_COW: u16 = 0x7FF3;
    pub const DOMID_INVALID: u16 = 0x7FF4;
    pub const DOMID_IDLE: u16 = 0x7FFF;
}

/// Error numbers Xen returns, positive (`errno.h`); hypercalls return them negated.
pub mod errno {
    pub const EPERM: i64 = 1;
    pub const ENOENT: i64 = 2;
    pub const ESRCH: i64 = 3;
    pub const EINTR: i64 = 4;
    pub const EIO: i64 = 5;
    pub const ENXIO: i64 = 6;
    pub const E2BIG: i64 = 7;
    pub const EAGAIN: i64 = 11;
    pub const ENOMEM: i64 = 12;
    pub const EACCES: i64 = 13;
    pub const EFAULT: i64 = 14;
    pub const EBUSY: i64 = 16;
    pub const ENODEV: i64 = 19;
    pub const EEXIST: i64 = 17;
    pub const EINVAL: i64 = 22;
    pub const ENOSPC: i64 = 28;
    pub const ERANGE: i64 = 34;
    pub const ENOSYS: i64 = 38;
    pub const EOPNOTSUPP: i64 = 95;
    pub const EDOM: i64 = 33;
    pub const EILSEQ: i64 = 84;
    pub const ENOBUFS: i64 = 105;
}

/// Event channels (`event_channel.h`): sub-commands, status values, VIRQs, the FIFO ABI,
/// and the sizes of the argument structures (Xen copies each as a whole).
pub mod evtchn {
    pub const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
    pub const EVTCHNOP_BIND_VIRQ: u64 = 1;
    pub const EVTCHNOP_BIND_PIRQ: u64 = 2;
    pub const EVTCHNOP_CLOSE: u64 = 3;
    pub const EVTCHNOP_SEND: u64 = 4;
    pub const EVTCHNOP_STATUS: u64 = 5;
    pub const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
    pub const EVTCHNOP_BIND_IPI: u64 = 7;
    pub const EVTCHNOP_BIND_VCPU: u64 = 8;
    pub const EVTCHNOP_UNMASK: u64 = 9;
    pub const EVTCHNOP_RESET: u64 = 10;
    pub const EVTCHNOP_INIT_CONTROL: u64 = 11;
    pub const EVTCHNOP_EXPAND_ARRAY: u64 = 12;
    pub const EVTCHNOP_SET_PRIORITY: u64 = 13;
    pub const EVTCHNOP_RESET_CONT: u64 = 14;

    pub const EVTCHNSTAT_CLOSED: u32 = 0;
    pub const EVTCHNSTAT_UNBOUND: u32 = 1;
    pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
    pub const EVTCHNSTAT_PIRQ: u32 = 3;
    pub const EVTCHNSTAT_VIRQ: u32 = 4;
    pub const EVTCHNSTAT_IPI: u32 = 5;

    pub const VIRQ_TIMER: u32 = 0;
    pub const VIRQ_DEBUG: u32 = 1;
    pub const VIRQ_CONSOLE: u32 = 2;
    pub const VIRQ_DOM_EXC: u32 = 3;
    pub const VIRQ_TBUF: u32 = 4;
    pub const VIRQ_DEBUGGER: u32 = 6;
    pub const VIRQ_XENOPROF: u32 = 7;
    pub const VIRQ_CON_RING: u32 = 8;
    pub const VIRQ_PCPU_STATE: u32 = 9;
    pub const VIRQ_MEM_EVENT: u32 = 10;
    pub const VIRQ_ARGO: u32 = 11;
    pub const VIRQ_ENOMEM: u32 = 12;
    pub const VIRQ_XENPMU: u32 = 13;
    pub const VIRQ_ARCH_0: u32 = 16;
    pub const VIRQ_ARCH_7: u32 = 23;
    pub const NR_VIRQS: u32 = 24;

    pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
    pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
    pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
    pub const EVTCHN_FIFO_MAX_QUEUES: u32 = 16;
    pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
    pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << 17;
    pub const EVTCHN_FIFO_PENDING: u32 = 31;
    pub const EVTCHN_FIFO_MASKED: u32 = 30;
    pub const EVTCHN_FIFO_LINKED: u32 = 29;
    pub const EVTCHN_FIFO_BUSY: u32 = 28;
    pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << 17) - 1;
    /// `struct evtchn_fifo_control_block`: `ready`, then `head[]` at this offset.
    pub const FIFO_CONTROL_BLOCK_SIZE: u64 = 72;
    pub const FIFO_CONTROL_BLOCK_HEAD: u64 = 8;

    pub const ALLOC_UNBOUND_SIZE: usize = 8;
    pub const BIND_INTERDOMAIN_SIZE: usize = 12;
    pub const BIND_VIRQ_SIZE: usize = 12;
    pub const BIND_IPI_SIZE: usize = 8;
    pub const STATUS_SIZE: usize = 24;
    pub const BIND_VCPU_SIZE: usize = 8;
    pub const INIT_CONTROL_SIZE: usize = 24;
    pub const SET_PRIORITY_SIZE: usize = 8;
    /// `struct evtchn_op` (the old `event_channel_op_compat` argument) and where its union is.
    pub const EVTCHN_OP_SIZE: usize = 28;
    pub const EVTCHN_OP_U: u64 = 4;
}

/// `vcpu_op` (`vcpu.h`): sub-commands, runstates and argument sizes.
pub mod vcpuop {
    pub const VCPUOP_INITIALISE: u64 = 0;
    pub const VCPUOP_UP: u64 = 1;
    pub const VCPUOP_DOWN: u64 = 2;
    pub const VCPUOP_IS_UP: u64 = 3;
    pub const VCPUOP_GET_RUNSTATE_INFO: u64 = 4;
    pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u64 = 5;
    pub const VCPUOP_SET_PERIODIC_TIMER: u64 = 6;
    pub const VCPUOP_STOP_PERIODIC_TIMER: u64 = 7;
    pub const VCPUOP_SET_SINGLESHOT_TIMER: u64 = 8;
    pub const VCPUOP_STOP_SINGLESHOT_TIMER: u64 = 9;
    pub const VCPUOP_REGISTER_VCPU_INFO: u64 = 10;
    pub const VCPUOP_SEND_NMI: u64 = 11;
    pub const VCPUOP_GET_PHYSID: u64 = 12;
    pub const VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA: u64 = 13;

    pub const RUNSTATE_RUNNING: u32 = 0;
    pub const RUNSTATE_RUNNABLE: u32 = 1;
    pub const RUNSTATE_BLOCKED: u32 = 2;
    pub const RUNSTATE_OFFLINE: u32 = 3;
    pub const XEN_RUNSTATE_UPDATE: u64 = 1 << 63;
    pub const RUNSTATE_INFO_SIZE: usize = 48;
    pub const SET_SINGLESHOT_TIMER_SIZE: usize = 16;
    /// `struct vcpu_guest_context` (x86_64), which VCPUOP_initialise reads whole.
    pub const VCPU_GUEST_CONTEXT_SIZE: usize = 5168;
}

/// `vm_assist` commands and types (xen.h).
pub mod vmasst {
    pub const VMASST_CMD_ENABLE: u64 = 0;
    pub const VMASST_CMD_DISABLE: u64 = 1;
    pub const VMASST_TYPE_4GB_SEGMENTS: u64 = 0;
    pub const VMASST_TYPE_4GB_SEGMENTS_NOTIFY: u64 = 1;
    pub const VMASST_TYPE_WRITABLE_PAGETABLES: u64 = 2;
    pub const VMASST_TYPE_PAE_EXTENDED_CR3: u64 = 3;
    pub const VMASST_TYPE_ARCHITECTURAL_IOPL: u64 = 4;
    pub const VMASST_TYPE_RUNSTATE_UPDATE_FLAG: u64 = 5;
    pub const VMASST_TYPE_M2P_STRICT: u64 = 32;
}

/// Offsets in `shared_info`, `vcpu_info` and `vcpu_time_info` (xen.h, x86_64).
pub mod shinfo {
    pub const XEN_LEGACY_MAX_VCPUS: u64 = 32;
    pub const VCPU_INFO_SIZE: u64 = 64;
    pub const EVTCHN_PENDING: u64 = 2048;
    pub const EVTCHN_MASK: u64 = 2560;
    pub const WC_VERSION: u64 = 3072;
    pub const WC_SEC: u64 = 3076;
    pub const WC_NSEC: u64 = 3080;
    pub const WC_SEC_HI: u64 = 3084;
    pub const VI_UPCALL_PENDING: u64 = 0;
    pub const VI_UPCALL_MASK: u64 = 1;
    pub const VI_PENDING_SEL: u64 = 8;
    pub const VI_CR2: u64 = 16;
    pub const VI_TIME: u64 = 32;
    pub const TIME_VERSION: u64 = 0;
    pub const TIME_TSC_TIMESTAMP: u64 = 8;
    pub const TIME_SYSTEM_TIME: u64 = 16;
    pub const TIME_TSC_TO_SYSTEM_MUL: u64 = 24;
    pub const TIME_TSC_SHIFT: u64 = 28;
    pub const TIME_FLAGS: u64 = 29;
    pub const TIME_INFO_SIZE: u64 = 32;
    pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1;
}

/// Xen ELF note types (`XEN_ELFNOTE_*`, elfnote.h).
pub mod elfnote {
    pub const INFO: u32 = 0;
    pub const ENTRY: u32 = 1;
    pub const HYPERCALL_PAGE: u32 = 2;
    pub const VIRT_BASE: u32 = 3;
    pub const PADDR_OFFSET: u32 = 4;
    pub const XEN_VERSION: u32 = 5;
    pub const GUEST_OS: u32 = 6;
    pub const GUEST_VERSION: u32 = 7;
    pub const LOADER: u32 = 8;
    pub const PAE_MODE: u32 = 9;
    pub const FEATURES: u32 = 10;
    pub const BSD_SYMTAB: u32 = 11;
    pub const HV_START_LOW: u32 = 12;
    pub const L1_MFN_VALID: u32 = 13;
    pub const SUSPEND_CANCEL: u32 = 14;
    pub const INIT_P2M: u32 = 15;
    pub const MOD_START_PFN: u32 = 16;
    pub const SUPPORTED_FEATURES: u32 = 17;
    pub const PHYS32_ENTRY: u32 = 18;
}

/// `start_info.flags` bits (`SIF_*`).
pub mod sif {
    pub const PRIVILEGED: u32 = 1 << 0;
    pub const INITDOMAIN: u32 = 1 << 1;
    pub const MULTIBOOT_MOD: u32 = 1 << 2;
    pub const MOD_START_PFN: u32 = 1 << 3;
    pub const VIRT_P2M_4TOOLS: u32 = 1 << 4;
}

/// First and last L4 slot reserved for the hypervisor on x86_64
/// (`ROOT_PAGETABLE_FIRST_XEN_SLOT` .. `ROOT_PAGETABLE_LAST_XEN_SLOT`):
/// 0xffff800000000000 .. 0xffff87ffffffffff. Guests may not populate them.
pub const ROOT_PAGETABLE_FIRST_XEN_SLOT: usize = 256;
pub const ROOT_PAGETABLE_LAST_XEN_SLOT: usize = 271;

/// x86_64 PV CPU ABI: selectors, the hypervisor's address range, trap and callback
/// registration, `HYPERVISOR_iret` (`arch-x86/xen-x86_64.h`, `arch-x86/xen.h`, `callback.h`)
/// and the few facts of Xen's own GDT a PV kernel depends on (`asm/desc.h`, `asm/config.h`).
pub mod x86 {
    /// Flat ring-3 selectors in Xen's reserved GDT page; 64-bit PV kernels run on them.
    pub const FLAT_RING3_CS32: u16 = 0xe023;
    pub const FLAT_RING3_CS64: u16 = 0xe033;
    pub const FLAT_RING3_DS32: u16 = 0xe02b;
    pub const FLAT_RING3_DS64: u16 = 0x0000;
    pub const FLAT_RING3_SS64: u16 = 0xe02b;
    pub const FLAT_KERNEL_CS: u16 = FLAT_RING3_CS64;
    pub const FLAT_KERNEL_SS: u16 = FLAT_RING3_SS64;
    pub const FLAT_KERNEL_DS: u16 = FLAT_RING3_DS64;
    pub const FLAT_USER_CS32: u16 = FLAT_RING3_CS32;
    /// Xen's own ring-0 selectors (`__HYPERVISOR_CS`, `__HYPERVISOR_DS32`).
    pub const HYPERVISOR_CS: u16 = 0xe008;
    pub const HYPERVISOR_DS32: u16 = 0xe010;

    /// The GDT: guest frames (`set_gdt`) below Xen's one reserved page (`FIRST_RESERVED_GDT_PAGE`).
    pub const FIRST_RESERVED_GDT_PAGE: u64 = 14;
    pub const FIRST_RESERVED_GDT_BYTE: u64 = FIRST_RESERVED_GDT_PAGE * 4096;
    pub const FIRST_RESERVED_GDT_ENTRY: u64 = FIRST_RESERVED_GDT_BYTE / 8;
    /// `TSS_ENTRY` = FIRST_RESERVED_GDT_ENTRY + 8, a 16-byte system descriptor.
    pub const TSS_SELECTOR: u16 = ((FIRST_RESERVED_GDT_ENTRY + 8) << 3) as u16;
    /// `LAST_RESERVED_GDT_BYTE` (one reserved page): the GDT limit.
    pub const LAST_RESERVED_GDT_BYTE: u64 = (FIRST_RESERVED_GDT_PAGE + 1) * 4096 - 1;

    /// `__HYPERVISOR_VIRT_START` .. `__HYPERVISOR_VIRT_END` (L4 slots 256..=271).
    pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
    pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;
    /// The read-only M2P every PV guest may read (`machine_to_phys_mapping`).
    pub const MACH2PHYS_VIRT_START: u64 = 0xffff_8000_0000_0000;
    pub const MACH2PHYS_VIRT_END: u64 = 0xffff_8040_0000_0000;

    /// `set_segment_base` selectors (`SEGBASE_*`).
    pub const SEGBASE_FS: u64 = 0;
    pub const SEGBASE_GS_USER: u64 = 1;
    pub const SEGBASE_GS_KERNEL: u64 = 2;
    pub const SEGBASE_GS_USER_SEL: u64 = 3;

    /// `iret_context.flags`: the guest left through SYSCALL (`VGCF_in_syscall`).
    pub const VGCF_IN_SYSCALL: u64 = 1 << 8;

    /// One `trap_info` (`set_trap_table`): flags bits 0-1 are the DPL for `int n`, bit 2 masks
    /// events on entry (`TI_GET_IF`). A zero `address` ends the table.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct TrapInfo {
        pub vector: u8,
        pub flags: u8,
        pub cs: u16,
        pub _pad: u32,
        pub address: u64,
    }

    /// `struct iret_context`: what the guest pushes before `HYPERVISOR_iret`, lowest first.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct IretContext {
        pub rax: u64,
        pub r11: u64,
        pub rcx: u64,
        pub flags: u64,
        pub rip: u64,
        pub cs: u64,
        pub rflags: u64,
        pub rsp: u64,
        pub ss: u64,
    }

    /// `callback_op` commands and types (`callback.h`).
    pub const CALLBACKOP_REGISTER: u64 = 0;
    pub const CALLBACKOP_UNREGISTER: u64 = 1;
    pub const CALLBACKTYPE_EVENT: u16 = 0;
    pub const CALLBACKTYPE_FAILSAFE: u16 = 1;
    pub const CALLBACKTYPE_SYSCALL: u16 = 2;
    pub const CALLBACKTYPE_SYSENTER_DEPRECATED: u16 = 3;
    pub const CALLBACKTYPE_NMI: u16 = 4;
    pub const CALLBACKTYPE_SYSENTER: u16 = 5;
    pub const CALLBACKTYPE_SYSCALL32: u16 = 7;
    pub const CALLBACKF_MASK_EVENTS: u16 = 1;

    /// `struct callback_register` (x86_64: `xen_callback_t` is a plain address).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct CallbackRegister {
        pub ty: u16,
        pub flags: u16,
        pub _pad: u32,
        pub address: u64,
    }
}

/// `start_info.magic` for a 64-bit PV guest.
pub const START_INFO_MAGIC: &[u8] = b"xen-3.0-x86_64";

/// One `mmu_update` request: `ptr` is the machine address of the PTE (low bits: command).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    pub ptr: u64,
    pub val: u64,
}

/// One `mmuext_op`. `arg1` is an mfn or a linear address; `arg2` is `nr_ents`,
/// a vcpumask pointer or a source mfn, depending on `cmd`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextOp {
    pub cmd: u32,
    pub _pad: u32,
    pub arg1: u64,
    pub arg2: u64,
}

/// `struct vcpu_register_vcpu_info` (VCPUOP_register_vcpu_info's argument).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuRegisterVcpuInfo {
    pub mfn: u64,
    pub offset: u32,
    pub rsvd: u32,
}

/// `struct sched_poll` (SCHEDOP_poll's argument): a port list handle, its length, an absolute
/// timeout.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedPoll {
    pub ports: u64,
    pub nr_ports: u32,
    pub _pad: u32,
    pub timeout: u64,
}

/// One `multicall_entry` (x86_64 layout: `op`, `result`, six arguments).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticallEntry {
    pub op: u64,
    pub result: i64,
    pub args: [u64; 6],
}

/// `start_info` (xen.h), x86_64 layout.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StartInfo {
    pub magic: [u8; 32],
    pub nr_pages: u64,
    pub shared_info: u64,
    pub flags: u32,
    pub _pad0: u32,
    pub store_mfn: u64,
    pub store_evtchn: u32,
    pub _pad1: u32,
    /// `console.domU.mfn` / `console.dom0.{info_off,info_size}`.
    pub console_mfn: u64,
    /// `console.domU.evtchn`.
    pub console_evtchn: u32,
    pub _pad2: u32,
    pub pt_base: u64,
    pub nr_pt_frames: u64,
    pub mfn_list: u64,
    pub mod_start: u64,
    pub mod_len: u64,
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    pub first_p2m_pfn: u64,
    pub nr_p2m_frames: u64,
}

/// Length of `start_info.cmd_line`.
pub const MAX_GUEST_CMDLINE: usize = 1024;

impl StartInfo {
    /// An all-zero `start_info`.
    pub const fn zeroed() -> Self {
        StartInfo {
            magic: [0; 32],
            nr_pages: 0,
            shared_info: 0,
            flags: 0,
            _pad0: 0,
            store_mfn: 0,
            store_evtchn: 0,
            _pad1: 0,
            console_mfn: 0,
            console_evtchn: 0,
            _pad2: 0,
            pt_base: 0,
            nr_pt_frames: 0,
            mfn_list: 0,
            mod_start: 0,
            mod_len: 0,
            cmd_line: [0; MAX_GUEST_CMDLINE],
            first_p2m_pfn: 0,
            nr_p2m_frames: 0,
        }
    }

    /// The command line up to its first NUL.
    pub fn cmd_line_bytes(&self) -> &[u8] {
        let n = self
            .cmd_line
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(MAX_GUEST_CMDLINE);
        &self.cmd_line[..n]
    }

    /// Whether `magic` starts with "xen-3.0-x86_64".
    pub fn magic_ok(&self) -> bool {
        self.magic.starts_with(START_INFO_MAGIC)
    }
}

/// Byte offsets of the `start_info` fields (checked against xen.h).
pub mod start_info_offset {
    pub const MAGIC: usize = 0;
    pub const NR_PAGES: usize = 32;
    pub const SHARED_INFO: usize = 40;
    pub const FLAGS: usize = 48;
    pub const STORE_MFN: usize = 56;
    pub const STORE_EVTCHN: usize = 64;
    pub const CONSOLE: usize = 72;
    pub const PT_BASE: usize = 88;
    pub const NR_PT_FRAMES: usize = 96;
    pub const MFN_LIST: usize = 104;
    pub const MOD_START: usize = 112;
    pub const MOD_LEN: usize = 120;
    pub const CMD_LINE: usize = 128;
    pub const FIRST_P2M_PFN: usize = 1152;
    pub const NR_P2M_FRAMES: usize = 1160;
    pub const SIZE: usize = 1168;
}

// Compile-time layout checks; the runtime test compares these with the C headers.
const _: () = {
    assert!(core::mem::size_of::<MmuUpdate>() == 16);
    assert!(core::mem::size_of::<MmuextOp>() == 24);
    assert!(core::mem::size_of::<MulticallEntry>() == 64);
    assert!(core::mem::size_of::<StartInfo>() == start_info_offset::SIZE);
    assert!(core::mem::offset_of!(StartInfo, mfn_list) == start_info_offset::MFN_LIST);
    assert!(core::mem::offset_of!(StartInfo, cmd_line) == start_info_offset::CMD_LINE);
    assert!(core::mem::offset_of!(StartInfo, pt_base) == start_info_offset::PT_BASE);
    assert!(core::mem::offset_of!(StartInfo, console_mfn) == start_info_offset::CONSOLE);
    assert!(core::mem::offset_of!(StartInfo, nr_p2m_frames) == start_info_offset::NR_P2M_FRAMES);
};

/// vm-memory reads and writes these structures whole.
#[cfg(feature = "byte-valued")]
mod byte_valued {
    use super::memory::{
        MachphysMapping, MachphysMfnList, MemoryExchange, MemoryMap, MemoryReservation,
    };
    use super::x86::{CallbackRegister, IretContext, TrapInfo};
    use super::{MmuUpdate, MmuextOp, MulticallEntry, SchedPoll, StartInfo, VcpuRegisterVcpuInfo};
    use vm_memory::ByteValued;

    // Each is repr(C) and made only of integers, every padding byte an explicit field (sizes
    // and offsets are checked against Xen's headers by abi_layout.rs): any bit pattern is a
    // valid value and no byte is uninitialised.
    // SAFETY: repr(C), ptr, val: two u64; no implicit padding.
    unsafe impl ByteValued for MmuUpdate {}
    // SAFETY: repr(C), cmd: u32, _pad: u32, arg1, arg2: u64; no implicit padding.
    unsafe impl ByteValued for MmuextOp {}
    // SAFETY: repr(C), mfn: u64, offset: u32, rsvd: u32; no implicit padding.
    unsafe impl ByteValued for VcpuRegisterVcpuInfo {}
    // SAFETY: repr(C), ports: u64, nr_ports: u32, _pad: u32, timeout: u64; no implicit padding.
    unsafe impl ByteValued for SchedPoll {}
    // SAFETY: repr(C), op: u64, result: i64, args: [u64; 6]; no implicit padding.
    unsafe impl ByteValued for MulticallEntry {}
    // SAFETY: repr(C), byte arrays, u64s and u32s each followed by an explicit u32 pad; no implicit padding.
    unsafe impl ByteValued for StartInfo {}
    // SAFETY: repr(C), u64, u64, u32, u32, u16, then _pad: [u8; 6] up to 32 bytes; no implicit padding.
    unsafe impl ByteValued for MemoryReservation {}
    // SAFETY: repr(C), two MemoryReservation (32 bytes each) and a u64; no implicit padding.
    unsafe impl ByteValued for MemoryExchange {}
    // SAFETY: repr(C), u32, _pad: u32, u64; no implicit padding.
    unsafe impl ByteValued for MemoryMap {}
    // SAFETY: repr(C), three u64; no implicit padding.
    unsafe impl ByteValued for MachphysMapping {}
    // SAFETY: repr(C), u32, _pad0: u32, u64, u32, _pad1: u32; no implicit padding.
    unsafe impl ByteValued for MachphysMfnList {}
    // SAFETY: repr(C), u8, u8, u16, _pad: u32, u64; no implicit padding.
    unsafe impl ByteValued for TrapInfo {}
    // SAFETY: repr(C), nine u64; no implicit padding.
    unsafe impl ByteValued for IretContext {}
    // SAFETY: repr(C), u16, u16, _pad: u32, u64; no implicit padding.
    unsafe impl ByteValued for CallbackRegister {}
}
