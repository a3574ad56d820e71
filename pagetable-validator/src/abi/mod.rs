//! Xen's public PV ABI for x86_64, as far as this project uses it.
//!
//! This is the project's single copy of Xen's constants and structure layouts.
//! Every value mirrors `xen/include/public/{xen.h,sched.h,version.h,elfnote.h}`;
//! `tests/abi_layout.rs` checks each one against the real headers from Debian's
//! `libxen-dev`. `no_std`, no dependencies: the guest kernel uses it too.

/// Hypercall numbers (`__HYPERVISOR_*`, xen.h).
pub mod hypercall;

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
pub mod memory;

/// `grant_table_op` (grant_table.h): sub-ops, status codes, flags, the grant entries and the
/// argument structures.
pub mod gnttab;

/// `physdev_op` (physdev.h): sub-ops, flags and the argument structures.
pub mod physdev;

/// `platform_op` (platform.h): commands, flags, `struct xen_platform_op` and the members of
/// its union that the VMM serves.
pub mod platform;

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
/// and the argument structures (Xen copies each as a whole).
pub mod evtchn;

/// `vcpu_op` (`vcpu.h`): sub-commands, runstates, argument sizes and structures.
pub mod vcpuop;

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
pub mod x86;

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
    use super::evtchn::{
        EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindVcpu, EvtchnBindVirq,
        EvtchnClose, EvtchnExpandArray, EvtchnInitControl, EvtchnOp, EvtchnReset, EvtchnSend,
        EvtchnSetPriority, EvtchnStatus, EvtchnStatusInterdomain, EvtchnStatusUnbound,
        EvtchnUnmask,
    };
    use super::gnttab::{
        GnttabCacheFlush, GnttabCopy, GnttabCopyPtr, GnttabGetStatusFrames, GnttabGetVersion,
        GnttabMapGrantRef, GnttabQuerySize, GnttabSetVersion, GnttabSetupTable, GnttabSwapGrantRef,
        GnttabTransfer, GnttabUnmapAndReplace, GnttabUnmapGrantRef, GrantEntryHeader, GrantEntryV1,
        GrantEntryV2,
    };
    use super::memory::{
        MachphysMapping, MachphysMfnList, MemoryExchange, MemoryMap, MemoryReservation,
    };
    use super::physdev::{
        PhysdevApic, PhysdevDbgpOp, PhysdevEoi, PhysdevGetFreePirq, PhysdevIrq,
        PhysdevIrqStatusQuery, PhysdevManagePci, PhysdevManagePciExt, PhysdevMapPirq,
        PhysdevPciDevice, PhysdevPciDeviceAdd, PhysdevPciMmcfgReserved, PhysdevPirqEoiGmfn,
        PhysdevSetIobitmap, PhysdevSetupGsi, PhysdevUnmapPirq,
    };
    use super::platform::{
        XenPlatformOp, XenpfEnterAcpiSleep, XenpfFirmwareInfo, XenpfPcpuVersion, XenpfPcpuinfo,
        XenpfSettime32, XenpfSettime64,
    };
    use super::vcpuop::{VcpuSetPeriodicTimer, VcpuSetSingleshotTimer};
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

    // event_channel.h
    // SAFETY: repr(C), two u16, u32; no implicit padding.
    unsafe impl ByteValued for EvtchnAllocUnbound {}
    // SAFETY: repr(C), u16, _pad: u16, two u32; no implicit padding.
    unsafe impl ByteValued for EvtchnBindInterdomain {}
    // SAFETY: repr(C), three u32.
    unsafe impl ByteValued for EvtchnBindVirq {}
    // SAFETY: repr(C), two u32.
    unsafe impl ByteValued for EvtchnBindIpi {}
    // SAFETY: repr(C), one u32.
    unsafe impl ByteValued for EvtchnClose {}
    // SAFETY: repr(C), one u32.
    unsafe impl ByteValued for EvtchnSend {}
    // SAFETY: repr(C), one u32.
    unsafe impl ByteValued for EvtchnUnmask {}
    // SAFETY: repr(C), u16, _pad: u16, three u32, [u8; 8]; no implicit padding.
    unsafe impl ByteValued for EvtchnStatus {}
    // SAFETY: repr(C), one u16.
    unsafe impl ByteValued for EvtchnStatusUnbound {}
    // SAFETY: repr(C), u16, _pad: u16, u32; no implicit padding.
    unsafe impl ByteValued for EvtchnStatusInterdomain {}
    // SAFETY: repr(C), two u32.
    unsafe impl ByteValued for EvtchnBindVcpu {}
    // SAFETY: repr(C), one u16.
    unsafe impl ByteValued for EvtchnReset {}
    // SAFETY: repr(C), u64, two u32, u8, _pad: [u8; 7]; no implicit padding.
    unsafe impl ByteValued for EvtchnInitControl {}
    // SAFETY: repr(C), one u64.
    unsafe impl ByteValued for EvtchnExpandArray {}
    // SAFETY: repr(C), two u32.
    unsafe impl ByteValued for EvtchnSetPriority {}
    // SAFETY: repr(C), u32, [u32; 6]; no implicit padding.
    unsafe impl ByteValued for EvtchnOp {}

    // vcpu.h
    // SAFETY: repr(C), one u64.
    unsafe impl ByteValued for VcpuSetPeriodicTimer {}
    // SAFETY: repr(C), u64, u32, _pad: u32; no implicit padding.
    unsafe impl ByteValued for VcpuSetSingleshotTimer {}

    // grant_table.h
    // SAFETY: repr(C), two u16, u32; no implicit padding.
    unsafe impl ByteValued for GrantEntryV1 {}
    // SAFETY: repr(C), two u16; no implicit padding.
    unsafe impl ByteValued for GrantEntryHeader {}
    // SAFETY: repr(C), two u16, u32, u64; no implicit padding.
    unsafe impl ByteValued for GrantEntryV2 {}
    // SAFETY: repr(C), u64, two u32, u16, i16, u32, u64; no implicit padding.
    unsafe impl ByteValued for GnttabMapGrantRef {}
    // SAFETY: repr(C), two u64, u32, i16, _pad: u16; no implicit padding.
    unsafe impl ByteValued for GnttabUnmapGrantRef {}
    // SAFETY: repr(C), two u64, u32, i16, _pad: u16; no implicit padding.
    unsafe impl ByteValued for GnttabUnmapAndReplace {}
    // SAFETY: repr(C), u16, _pad0: u16, u32, i16, _pad1: [u8; 6], u64; no implicit padding.
    unsafe impl ByteValued for GnttabSetupTable {}
    // SAFETY: repr(C), u64, u16, _pad0: u16, u32, i16, _pad1: [u8; 6]; no implicit padding.
    unsafe impl ByteValued for GnttabTransfer {}
    // SAFETY: repr(C), u64, two u16, _pad: u32; no implicit padding.
    unsafe impl ByteValued for GnttabCopyPtr {}
    // SAFETY: repr(C), two GnttabCopyPtr (16 bytes each), two u16, i16, _pad: u16; no
    // implicit padding.
    unsafe impl ByteValued for GnttabCopy {}
    // SAFETY: repr(C), u16, _pad0: u16, two u32, i16, _pad1: u16; no implicit padding.
    unsafe impl ByteValued for GnttabQuerySize {}
    // SAFETY: repr(C), one u32.
    unsafe impl ByteValued for GnttabSetVersion {}
    // SAFETY: repr(C), u32, u16, i16, u64; no implicit padding.
    unsafe impl ByteValued for GnttabGetStatusFrames {}
    // SAFETY: repr(C), two u16, u32; no implicit padding.
    unsafe impl ByteValued for GnttabGetVersion {}
    // SAFETY: repr(C), two u32, i16, _pad: u16; no implicit padding.
    unsafe impl ByteValued for GnttabSwapGrantRef {}
    // SAFETY: repr(C), u64, two u16, u32; no implicit padding.
    unsafe impl ByteValued for GnttabCacheFlush {}

    // physdev.h
    // SAFETY: repr(C), one u32.
    unsafe impl ByteValued for PhysdevEoi {}
    // SAFETY: repr(C), one u64.
    unsafe impl ByteValued for PhysdevPirqEoiGmfn {}
    // SAFETY: repr(C), two u32; no implicit padding.
    unsafe impl ByteValued for PhysdevIrqStatusQuery {}
    // SAFETY: repr(C), u64, u32, _pad: u32; no implicit padding.
    unsafe impl ByteValued for PhysdevSetIobitmap {}
    // SAFETY: repr(C), u64, two u32; no implicit padding.
    unsafe impl ByteValued for PhysdevApic {}
    // SAFETY: repr(C), two u32; no implicit padding.
    unsafe impl ByteValued for PhysdevIrq {}
    // SAFETY: repr(C), u16, _pad0: u16, six i32, _pad1: u32, u64; no implicit padding.
    unsafe impl ByteValued for PhysdevMapPirq {}
    // SAFETY: repr(C), u16, _pad: u16, i32; no implicit padding.
    unsafe impl ByteValued for PhysdevUnmapPirq {}
    // SAFETY: repr(C), two u8; no implicit padding.
    unsafe impl ByteValued for PhysdevManagePci {}
    // SAFETY: repr(C), u8, u8, _pad0: u16, two u32, u8, u8, _pad1: u16; no implicit padding.
    unsafe impl ByteValued for PhysdevManagePciExt {}
    // SAFETY: repr(C), u16, u8, u8, u32, u8, u8, _pad: u16; no implicit padding.
    unsafe impl ByteValued for PhysdevPciDeviceAdd {}
    // SAFETY: repr(C), u16, u8, u8; no implicit padding.
    unsafe impl ByteValued for PhysdevPciDevice {}
    // SAFETY: repr(C), i32, u8, u8, _pad: u16; no implicit padding.
    unsafe impl ByteValued for PhysdevSetupGsi {}
    // SAFETY: repr(C), i32, u32; no implicit padding.
    unsafe impl ByteValued for PhysdevGetFreePirq {}
    // SAFETY: repr(C), u64, u16, u8, u8, u32; no implicit padding.
    unsafe impl ByteValued for PhysdevPciMmcfgReserved {}
    // SAFETY: repr(C), u8, u8, PhysdevPciDevice (align 2, at offset 2); no implicit padding.
    unsafe impl ByteValued for PhysdevDbgpOp {}

    // platform.h
    // SAFETY: repr(C), two u32, [u64; 16] (at offset 8); no implicit padding.
    unsafe impl ByteValued for XenPlatformOp {}
    // SAFETY: repr(C), two u32, u64; no implicit padding.
    unsafe impl ByteValued for XenpfSettime32 {}
    // SAFETY: repr(C), u64, two u32, u64; no implicit padding.
    unsafe impl ByteValued for XenpfSettime64 {}
    // SAFETY: repr(C), two u32, [u64; 4] (at offset 8); no implicit padding.
    unsafe impl ByteValued for XenpfFirmwareInfo {}
    // SAFETY: repr(C), two u16, two u32; no implicit padding.
    unsafe impl ByteValued for XenpfEnterAcpiSleep {}
    // SAFETY: repr(C), five u32.
    unsafe impl ByteValued for XenpfPcpuinfo {}
    // SAFETY: repr(C), two u32, [u8; 12], three u32 (at offset 20, aligned); no implicit padding.
    unsafe impl ByteValued for XenpfPcpuVersion {}
}
