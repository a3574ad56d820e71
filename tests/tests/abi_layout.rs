//! Checks `pagetable_validator::abi` (and the header-derivable parts of `pte`) against
//! Xen's real public headers from Debian's `libxen-dev`.
//!
//! The test is table-driven: every row pairs one of our values (a constant, a field
//! offset or a field size) with a C expression over the headers. A generated C program
//! prints each expression; every row whose value differs is listed in one failure.
//! A second test parses `abi/` itself so that a constant or struct field added there
//! without a row here fails too (unless exempted below with a reason).

use pagetable_validator::abi::x86::{self, CallbackRegister, IretContext, TrapInfo};
use pagetable_validator::abi::{
    self, console, domid, elfnote, errno, hypercall, memory, mmu, mmuext, sched, shinfo, sif,
    start_info_offset, uvmf, version, vmasst, xenfeat, MmuUpdate, MmuextOp, MulticallEntry,
    SchedPoll, StartInfo, VcpuRegisterVcpuInfo,
};
use pagetable_validator::pte;
use std::collections::{BTreeMap, BTreeSet};
use std::mem::{offset_of, size_of};

#[path = "abi_layout/probe.rs"]
mod probe;
use probe::{declared_in_abi_rs, header_value, mismatches, run_c, Check};

/// Constants whose value the public headers do not carry, with the reason.
/// These are the only names of `abi/` the layout test does not compare.
const EXEMPT: &[(&str, &str)] = &[
    (
        "hypercall::STUB_SIZE",
        "hypercall page stub size is set by Xen's hypercall_page_initialise, not a public header",
    ),
    ("hypercall::NR_STUBS", "derived: 4096 / STUB_SIZE"),
    (
        "memory::MEMOP_EXTENT_SHIFT",
        "Xen-internal (xen/include/xen/hypercall.h); memory.h only says the start extent sits above the command",
    ),
    ("memory::MEMOP_CMD_MASK", "derived: (1 << MEMOP_EXTENT_SHIFT) - 1"),
    (
        "x86::HYPERVISOR_CS",
        "Xen-internal (asm/config.h __HYPERVISOR_CS), not in the public headers",
    ),
    (
        "x86::HYPERVISOR_DS32",
        "Xen-internal (asm/config.h __HYPERVISOR_DS32), not in the public headers",
    ),
    (
        "x86::TSS_SELECTOR",
        "Xen-internal (asm/desc.h TSS_ENTRY << 3), not in the public headers",
    ),
    (
        "x86::LAST_RESERVED_GDT_BYTE",
        "Xen-internal (asm/desc.h, one reserved page), not in the public headers",
    ),
    (
        "evtchn::EVTCHNOP_RESET_CONT",
        "Xen-internal (common/event_channel.c continuation of EVTCHNOP_reset), not in the public headers",
    ),
    (
        "platform::ACPI_STATE_S3",
        "ACPI's sleep state number S3 (Xen's acpi/actypes.h), not in the public headers",
    ),
    (
        "mmu::UPDATE_PREEMPTED",
        "Xen-internal (arch/x86/mm.c MMU_UPDATE_PREEMPTED), not in the public headers",
    ),
    (
        "gnttab::GNTTABOP_CMD_MASK",
        "Xen-internal (common/grant_table.c GNTTABOP_CONTINUATION_ARG_SHIFT), not in the public headers",
    ),
    (
        "START_INFO_MAGIC",
        "xen.h only documents the format \"xen-<version>-<platform>\"; the value comes from the domain builder",
    ),
];

/// `check!(path, "C expr")`: a constant compared with a C expression.
macro_rules! check {
    ($ours:path, $c:expr) => {
        Check {
            ours: stringify!($ours).replace(' ', ""),
            c_expr: String::from($c),
            value: $ours as i128,
        }
    };
}

/// `consts! { path => "C expr", ... }`: a table of constant rows. (Brace form, so
/// rustfmt keeps one row per line.)
macro_rules! consts {
    ($($ours:path => $c:expr),* $(,)?) => {
        vec![$(check!($ours, $c)),*]
    };
}

/// Size of a field, named through an accessor so no instance is needed.
fn field_size<S, F>(_: fn(&S) -> &F) -> usize {
    size_of::<F>()
}

/// `field!(RustStruct, rust_field, "struct c_name", "c.member")`: offset and size.
macro_rules! field {
    ($s:ident, $f:ident, $cs:expr, $cf:expr) => {
        [
            Check {
                ours: format!("{}.{}@offset", stringify!($s), stringify!($f)),
                c_expr: format!("offsetof({}, {})", $cs, $cf),
                value: offset_of!($s, $f) as i128,
            },
            Check {
                ours: format!("{}.{}@size", stringify!($s), stringify!($f)),
                c_expr: format!("sizeof((({} *)0)->{})", $cs, $cf),
                value: field_size(|s: &$s| &s.$f) as i128,
            },
        ]
    };
}

/// `pad!(RustStruct, pad_field, "struct c_name", "c.prev", "c.next")`: our explicit
/// padding field must sit exactly in the C compiler's gap between `prev` and `next`.
/// `pad!(RustStruct, pad_field, "struct c_name", "c.last")`: it must fill exactly the tail
/// padding after `last`.
macro_rules! pad {
    ($s:ident, $f:ident, $cs:expr, $prev:expr, $next:expr) => {
        pad!(@ $s, $f, $cs, $prev, format!("offsetof({}, {})", $cs, $next))
    };
    ($s:ident, $f:ident, $cs:expr, $last:expr) => {
        pad!(@ $s, $f, $cs, $last, format!("sizeof({})", $cs))
    };
    (@ $s:ident, $f:ident, $cs:expr, $prev:expr, $end:expr) => {{
        let end_prev = format!(
            "(offsetof({cs}, {p}) + sizeof((({cs} *)0)->{p}))",
            cs = $cs,
            p = $prev
        );
        [
            Check {
                ours: format!("{}.{}@offset", stringify!($s), stringify!($f)),
                c_expr: end_prev.clone(),
                value: offset_of!($s, $f) as i128,
            },
            Check {
                ours: format!("{}.{}@size", stringify!($s), stringify!($f)),
                c_expr: format!("({} - {})", $end, end_prev),
                value: field_size(|s: &$s| &s.$f) as i128,
            },
        ]
    }};
}

fn size_check(name: &str, c_type: &str, value: usize) -> Check {
    Check {
        ours: format!("{name}@sizeof"),
        c_expr: format!("sizeof({c_type})"),
        value: value as i128,
    }
}

fn constant_checks() -> Vec<Check> {
    consts! {
        // Hypercall numbers (xen.h).
        hypercall::SET_TRAP_TABLE => "__HYPERVISOR_set_trap_table",
        hypercall::MMU_UPDATE => "__HYPERVISOR_mmu_update",
        hypercall::SET_GDT => "__HYPERVISOR_set_gdt",
        hypercall::STACK_SWITCH => "__HYPERVISOR_stack_switch",
        hypercall::SET_CALLBACKS => "__HYPERVISOR_set_callbacks",
        hypercall::FPU_TASKSWITCH => "__HYPERVISOR_fpu_taskswitch",
        hypercall::SCHED_OP_COMPAT => "__HYPERVISOR_sched_op_compat",
        hypercall::PLATFORM_OP => "__HYPERVISOR_platform_op",
        hypercall::SET_DEBUGREG => "__HYPERVISOR_set_debugreg",
        hypercall::GET_DEBUGREG => "__HYPERVISOR_get_debugreg",
        hypercall::UPDATE_DESCRIPTOR => "__HYPERVISOR_update_descriptor",
        hypercall::MEMORY_OP => "__HYPERVISOR_memory_op",
        hypercall::MULTICALL => "__HYPERVISOR_multicall",
        hypercall::UPDATE_VA_MAPPING => "__HYPERVISOR_update_va_mapping",
        hypercall::SET_TIMER_OP => "__HYPERVISOR_set_timer_op",
        hypercall::EVENT_CHANNEL_OP_COMPAT => "__HYPERVISOR_event_channel_op_compat",
        hypercall::XEN_VERSION => "__HYPERVISOR_xen_version",
        hypercall::CONSOLE_IO => "__HYPERVISOR_console_io",
        hypercall::PHYSDEV_OP_COMPAT => "__HYPERVISOR_physdev_op_compat",
        hypercall::GRANT_TABLE_OP => "__HYPERVISOR_grant_table_op",
        hypercall::VM_ASSIST => "__HYPERVISOR_vm_assist",
        hypercall::UPDATE_VA_MAPPING_OTHERDOMAIN => "__HYPERVISOR_update_va_mapping_otherdomain",
        hypercall::IRET => "__HYPERVISOR_iret",
        hypercall::VCPU_OP => "__HYPERVISOR_vcpu_op",
        hypercall::SET_SEGMENT_BASE => "__HYPERVISOR_set_segment_base",
        hypercall::MMUEXT_OP => "__HYPERVISOR_mmuext_op",
        hypercall::XSM_OP => "__HYPERVISOR_xsm_op",
        hypercall::NMI_OP => "__HYPERVISOR_nmi_op",
        hypercall::SCHED_OP => "__HYPERVISOR_sched_op",
        hypercall::CALLBACK_OP => "__HYPERVISOR_callback_op",
        hypercall::XENOPROF_OP => "__HYPERVISOR_xenoprof_op",
        hypercall::EVENT_CHANNEL_OP => "__HYPERVISOR_event_channel_op",
        hypercall::PHYSDEV_OP => "__HYPERVISOR_physdev_op",
        hypercall::HVM_OP => "__HYPERVISOR_hvm_op",
        hypercall::SYSCTL => "__HYPERVISOR_sysctl",
        hypercall::DOMCTL => "__HYPERVISOR_domctl",
        hypercall::KEXEC_OP => "__HYPERVISOR_kexec_op",
        // mmu_update commands (xen.h). The command lives in ptr[1:0], so the mask
        // must be exactly the union of all commands.
        mmu::NORMAL_PT_UPDATE => "MMU_NORMAL_PT_UPDATE",
        mmu::MACHPHYS_UPDATE => "MMU_MACHPHYS_UPDATE",
        mmu::PT_UPDATE_PRESERVE_AD => "MMU_PT_UPDATE_PRESERVE_AD",
        mmu::PT_UPDATE_NO_TRANSLATE => "MMU_PT_UPDATE_NO_TRANSLATE",
        mmu::CMD_MASK => concat!(
            "(MMU_NORMAL_PT_UPDATE | MMU_MACHPHYS_UPDATE",
            " | MMU_PT_UPDATE_PRESERVE_AD | MMU_PT_UPDATE_NO_TRANSLATE)"
        ),
        // mmuext_op commands (xen.h).
        mmuext::PIN_L1_TABLE => "MMUEXT_PIN_L1_TABLE",
        mmuext::PIN_L2_TABLE => "MMUEXT_PIN_L2_TABLE",
        mmuext::PIN_L3_TABLE => "MMUEXT_PIN_L3_TABLE",
        mmuext::PIN_L4_TABLE => "MMUEXT_PIN_L4_TABLE",
        mmuext::UNPIN_TABLE => "MMUEXT_UNPIN_TABLE",
        mmuext::NEW_BASEPTR => "MMUEXT_NEW_BASEPTR",
        mmuext::TLB_FLUSH_LOCAL => "MMUEXT_TLB_FLUSH_LOCAL",
        mmuext::INVLPG_LOCAL => "MMUEXT_INVLPG_LOCAL",
        mmuext::TLB_FLUSH_MULTI => "MMUEXT_TLB_FLUSH_MULTI",
        mmuext::INVLPG_MULTI => "MMUEXT_INVLPG_MULTI",
        mmuext::TLB_FLUSH_ALL => "MMUEXT_TLB_FLUSH_ALL",
        mmuext::INVLPG_ALL => "MMUEXT_INVLPG_ALL",
        mmuext::FLUSH_CACHE => "MMUEXT_FLUSH_CACHE",
        mmuext::SET_LDT => "MMUEXT_SET_LDT",
        mmuext::NEW_USER_BASEPTR => "MMUEXT_NEW_USER_BASEPTR",
        mmuext::CLEAR_PAGE => "MMUEXT_CLEAR_PAGE",
        mmuext::COPY_PAGE => "MMUEXT_COPY_PAGE",
        mmuext::MARK_SUPER => "MMUEXT_MARK_SUPER",
        mmuext::UNMARK_SUPER => "MMUEXT_UNMARK_SUPER",
        mmuext::FLUSH_CACHE_GLOBAL => "MMUEXT_FLUSH_CACHE_GLOBAL",
        // update_va_mapping flags (xen.h).
        uvmf::NONE => "UVMF_NONE",
        uvmf::TLB_FLUSH => "UVMF_TLB_FLUSH",
        uvmf::INVLPG => "UVMF_INVLPG",
        uvmf::FLUSHTYPE_MASK => "UVMF_FLUSHTYPE_MASK",
        uvmf::MULTI => "UVMF_MULTI",
        uvmf::LOCAL => "UVMF_LOCAL",
        uvmf::ALL => "UVMF_ALL",
        // sched_op (sched.h).
        sched::SCHEDOP_YIELD => "SCHEDOP_yield",
        sched::SCHEDOP_BLOCK => "SCHEDOP_block",
        sched::SCHEDOP_SHUTDOWN => "SCHEDOP_shutdown",
        sched::SCHEDOP_POLL => "SCHEDOP_poll",
        sched::SCHEDOP_REMOTE_SHUTDOWN => "SCHEDOP_remote_shutdown",
        sched::SCHEDOP_SHUTDOWN_CODE => "SCHEDOP_shutdown_code",
        sched::SCHEDOP_WATCHDOG => "SCHEDOP_watchdog",
        sched::SHUTDOWN_POWEROFF => "SHUTDOWN_poweroff",
        sched::SHUTDOWN_REBOOT => "SHUTDOWN_reboot",
        sched::SHUTDOWN_SUSPEND => "SHUTDOWN_suspend",
        sched::SHUTDOWN_CRASH => "SHUTDOWN_crash",
        sched::SHUTDOWN_WATCHDOG => "SHUTDOWN_watchdog",
        // vm_assist (xen.h).
        vmasst::VMASST_CMD_ENABLE => "VMASST_CMD_enable",
        vmasst::VMASST_CMD_DISABLE => "VMASST_CMD_disable",
        vmasst::VMASST_TYPE_4GB_SEGMENTS => "VMASST_TYPE_4gb_segments",
        vmasst::VMASST_TYPE_4GB_SEGMENTS_NOTIFY => "VMASST_TYPE_4gb_segments_notify",
        vmasst::VMASST_TYPE_WRITABLE_PAGETABLES => "VMASST_TYPE_writable_pagetables",
        vmasst::VMASST_TYPE_PAE_EXTENDED_CR3 => "VMASST_TYPE_pae_extended_cr3",
        vmasst::VMASST_TYPE_ARCHITECTURAL_IOPL => "VMASST_TYPE_architectural_iopl",
        vmasst::VMASST_TYPE_RUNSTATE_UPDATE_FLAG => "VMASST_TYPE_runstate_update_flag",
        vmasst::VMASST_TYPE_M2P_STRICT => "VMASST_TYPE_m2p_strict",
        // shared_info / vcpu_info / vcpu_time_info (xen.h).
        shinfo::XEN_LEGACY_MAX_VCPUS => "XEN_LEGACY_MAX_VCPUS",
        shinfo::VCPU_INFO_SIZE => "sizeof(struct vcpu_info)",
        shinfo::EVTCHN_PENDING => "offsetof(struct shared_info, evtchn_pending)",
        shinfo::EVTCHN_MASK => "offsetof(struct shared_info, evtchn_mask)",
        shinfo::WC_VERSION => "offsetof(struct shared_info, wc_version)",
        shinfo::WC_SEC => "offsetof(struct shared_info, wc_sec)",
        shinfo::WC_NSEC => "offsetof(struct shared_info, wc_nsec)",
        shinfo::WC_SEC_HI => "offsetof(struct shared_info, wc_sec_hi)",
        shinfo::VI_UPCALL_PENDING => "offsetof(struct vcpu_info, evtchn_upcall_pending)",
        shinfo::VI_UPCALL_MASK => "offsetof(struct vcpu_info, evtchn_upcall_mask)",
        shinfo::VI_PENDING_SEL => "offsetof(struct vcpu_info, evtchn_pending_sel)",
        shinfo::VI_CR2 => "offsetof(struct vcpu_info, arch.cr2)",
        shinfo::VI_TIME => "offsetof(struct vcpu_info, time)",
        shinfo::TIME_VERSION => "offsetof(struct vcpu_time_info, version)",
        shinfo::TIME_TSC_TIMESTAMP => "offsetof(struct vcpu_time_info, tsc_timestamp)",
        shinfo::TIME_SYSTEM_TIME => "offsetof(struct vcpu_time_info, system_time)",
        shinfo::TIME_TSC_TO_SYSTEM_MUL => "offsetof(struct vcpu_time_info, tsc_to_system_mul)",
        shinfo::TIME_TSC_SHIFT => "offsetof(struct vcpu_time_info, tsc_shift)",
        shinfo::TIME_FLAGS => "offsetof(struct vcpu_time_info, flags)",
        shinfo::TIME_INFO_SIZE => "sizeof(struct vcpu_time_info)",
        shinfo::XEN_PVCLOCK_TSC_STABLE_BIT => "XEN_PVCLOCK_TSC_STABLE_BIT",
        // console_io (xen.h).
        console::CONSOLEIO_WRITE => "CONSOLEIO_write",
        console::CONSOLEIO_READ => "CONSOLEIO_read",
        // xen_version (version.h).
        version::XENVER_VERSION => "XENVER_version",
        version::XENVER_EXTRAVERSION => "XENVER_extraversion",
        version::XENVER_COMPILE_INFO => "XENVER_compile_info",
        version::XENVER_CAPABILITIES => "XENVER_capabilities",
        version::XENVER_CHANGESET => "XENVER_changeset",
        version::XENVER_PLATFORM_PARAMETERS => "XENVER_platform_parameters",
        version::XENVER_GET_FEATURES => "XENVER_get_features",
        version::XENVER_PAGESIZE => "XENVER_pagesize",
        version::XENVER_GUEST_HANDLE => "XENVER_guest_handle",
        version::XENVER_COMMANDLINE => "XENVER_commandline",
        version::XENVER_BUILD_ID => "XENVER_build_id",
        version::EXTRAVERSION_LEN => "XEN_EXTRAVERSION_LEN",
        xenfeat::PAE_PGDIR_ABOVE_4GB => "XENFEAT_pae_pgdir_above_4gb",
        xenfeat::MMU_PT_UPDATE_PRESERVE_AD => "XENFEAT_mmu_pt_update_preserve_ad",
        xenfeat::HIGHMEM_ASSIST => "XENFEAT_highmem_assist",
        xenfeat::GNTTAB_MAP_AVAIL_BITS => "XENFEAT_gnttab_map_avail_bits",
        xenfeat::DOM0 => "XENFEAT_dom0",
        xenfeat::MEMORY_OP_VNODE_SUPPORTED => "XENFEAT_memory_op_vnode_supported",
        xenfeat::DIRECT_MAPPED => "XENFEAT_direct_mapped",
        xenfeat::NR_SUBMAPS => "XENFEAT_NR_SUBMAPS",
        // Domain ids (xen.h).
        domid::DOMID_SELF => "DOMID_SELF",
        domid::DOMID_IO => "DOMID_IO",
        domid::DOMID_XEN => "DOMID_XEN",
        domid::DOMID_COW => "DOMID_COW",
        domid::DOMID_INVALID => "DOMID_INVALID",
        domid::DOMID_IDLE => "DOMID_IDLE",
        // errno (errno.h). XENKVM_E* is the header's full list, including the
        // Xen-internal EINTR, generated by the C program (see C_PRELUDE).
        errno::EPERM => "XENKVM_EPERM",
        errno::ENOENT => "XENKVM_ENOENT",
        errno::ESRCH => "XENKVM_ESRCH",
        errno::EINTR => "XENKVM_EINTR",
        errno::EIO => "XENKVM_EIO",
        errno::ENXIO => "XENKVM_ENXIO",
        errno::E2BIG => "XENKVM_E2BIG",
        errno::EAGAIN => "XENKVM_EAGAIN",
        errno::ENOMEM => "XENKVM_ENOMEM",
        errno::EACCES => "XENKVM_EACCES",
        errno::EFAULT => "XENKVM_EFAULT",
        errno::EBUSY => "XENKVM_EBUSY",
        errno::ENODEV => "XENKVM_ENODEV",
        errno::EEXIST => "XENKVM_EEXIST",
        errno::EINVAL => "XENKVM_EINVAL",
        errno::ENOSPC => "XENKVM_ENOSPC",
        errno::ERANGE => "XENKVM_ERANGE",
        errno::ENOSYS => "XENKVM_ENOSYS",
        errno::EOPNOTSUPP => "XENKVM_EOPNOTSUPP",
        errno::EDOM => "XENKVM_EDOM",
        errno::EILSEQ => "XENKVM_EILSEQ",
        errno::ENOBUFS => "XENKVM_ENOBUFS",
        // x86_64 PV CPU ABI (arch-x86/xen-x86_64.h, arch-x86/xen.h, callback.h).
        x86::FLAT_RING3_CS32 => "FLAT_RING3_CS32",
        x86::FLAT_RING3_CS64 => "FLAT_RING3_CS64",
        x86::FLAT_RING3_DS32 => "FLAT_RING3_DS32",
        x86::FLAT_RING3_DS64 => "FLAT_RING3_DS64",
        x86::FLAT_RING3_SS64 => "FLAT_RING3_SS64",
        x86::FLAT_KERNEL_CS => "FLAT_KERNEL_CS",
        x86::FLAT_KERNEL_SS => "FLAT_KERNEL_SS",
        x86::FLAT_KERNEL_DS => "FLAT_KERNEL_DS",
        x86::FLAT_USER_CS32 => "FLAT_USER_CS32",
        x86::FIRST_RESERVED_GDT_PAGE => "FIRST_RESERVED_GDT_PAGE",
        x86::FIRST_RESERVED_GDT_BYTE => "FIRST_RESERVED_GDT_BYTE",
        x86::FIRST_RESERVED_GDT_ENTRY => "FIRST_RESERVED_GDT_ENTRY",
        x86::HYPERVISOR_VIRT_START => "HYPERVISOR_VIRT_START",
        x86::HYPERVISOR_VIRT_END => "HYPERVISOR_VIRT_END",
        x86::MACH2PHYS_VIRT_START => "MACH2PHYS_VIRT_START",
        x86::MACH2PHYS_VIRT_END => "MACH2PHYS_VIRT_END",
        x86::SEGBASE_FS => "SEGBASE_FS",
        x86::SEGBASE_GS_USER => "SEGBASE_GS_USER",
        x86::SEGBASE_GS_KERNEL => "SEGBASE_GS_KERNEL",
        x86::SEGBASE_GS_USER_SEL => "SEGBASE_GS_USER_SEL",
        x86::VGCF_IN_SYSCALL => "VGCF_in_syscall",
        x86::CALLBACKOP_REGISTER => "CALLBACKOP_register",
        x86::CALLBACKOP_UNREGISTER => "CALLBACKOP_unregister",
        x86::CALLBACKTYPE_EVENT => "CALLBACKTYPE_event",
        x86::CALLBACKTYPE_FAILSAFE => "CALLBACKTYPE_failsafe",
        x86::CALLBACKTYPE_SYSCALL => "CALLBACKTYPE_syscall",
        x86::CALLBACKTYPE_SYSENTER_DEPRECATED => "CALLBACKTYPE_sysenter_deprecated",
        x86::CALLBACKTYPE_NMI => "CALLBACKTYPE_nmi",
        x86::CALLBACKTYPE_SYSENTER => "CALLBACKTYPE_sysenter",
        x86::CALLBACKTYPE_SYSCALL32 => "CALLBACKTYPE_syscall32",
        x86::CALLBACKF_MASK_EVENTS => "CALLBACKF_mask_events",
        // ELF notes (elfnote.h).
        elfnote::INFO => "XEN_ELFNOTE_INFO",
        elfnote::ENTRY => "XEN_ELFNOTE_ENTRY",
        elfnote::HYPERCALL_PAGE => "XEN_ELFNOTE_HYPERCALL_PAGE",
        elfnote::VIRT_BASE => "XEN_ELFNOTE_VIRT_BASE",
        elfnote::PADDR_OFFSET => "XEN_ELFNOTE_PADDR_OFFSET",
        elfnote::XEN_VERSION => "XEN_ELFNOTE_XEN_VERSION",
        elfnote::GUEST_OS => "XEN_ELFNOTE_GUEST_OS",
        elfnote::GUEST_VERSION => "XEN_ELFNOTE_GUEST_VERSION",
        elfnote::LOADER => "XEN_ELFNOTE_LOADER",
        elfnote::PAE_MODE => "XEN_ELFNOTE_PAE_MODE",
        elfnote::FEATURES => "XEN_ELFNOTE_FEATURES",
        elfnote::BSD_SYMTAB => "XEN_ELFNOTE_BSD_SYMTAB",
        elfnote::HV_START_LOW => "XEN_ELFNOTE_HV_START_LOW",
        elfnote::L1_MFN_VALID => "XEN_ELFNOTE_L1_MFN_VALID",
        elfnote::SUSPEND_CANCEL => "XEN_ELFNOTE_SUSPEND_CANCEL",
        elfnote::INIT_P2M => "XEN_ELFNOTE_INIT_P2M",
        elfnote::MOD_START_PFN => "XEN_ELFNOTE_MOD_START_PFN",
        elfnote::SUPPORTED_FEATURES => "XEN_ELFNOTE_SUPPORTED_FEATURES",
        elfnote::PHYS32_ENTRY => "XEN_ELFNOTE_PHYS32_ENTRY",
        // memory_op (memory.h).
        memory::XENMEM_INCREASE_RESERVATION => "XENMEM_increase_reservation",
        memory::XENMEM_DECREASE_RESERVATION => "XENMEM_decrease_reservation",
        memory::XENMEM_MAXIMUM_RAM_PAGE => "XENMEM_maximum_ram_page",
        memory::XENMEM_CURRENT_RESERVATION => "XENMEM_current_reservation",
        memory::XENMEM_MAXIMUM_RESERVATION => "XENMEM_maximum_reservation",
        memory::XENMEM_MACHPHYS_MFN_LIST => "XENMEM_machphys_mfn_list",
        memory::XENMEM_POPULATE_PHYSMAP => "XENMEM_populate_physmap",
        memory::XENMEM_ADD_TO_PHYSMAP => "XENMEM_add_to_physmap",
        memory::XENMEM_MEMORY_MAP => "XENMEM_memory_map",
        memory::XENMEM_MACHINE_MEMORY_MAP => "XENMEM_machine_memory_map",
        memory::XENMEM_EXCHANGE => "XENMEM_exchange",
        memory::XENMEM_MACHPHYS_MAPPING => "XENMEM_machphys_mapping",
        memory::XENMEM_SET_MEMORY_MAP => "XENMEM_set_memory_map",
        memory::XENMEM_MAXIMUM_GPFN => "XENMEM_maximum_gpfn",
        memory::XENMEM_REMOVE_FROM_PHYSMAP => "XENMEM_remove_from_physmap",
        memory::XENMEM_SET_POD_TARGET => "XENMEM_set_pod_target",
        memory::XENMEM_GET_POD_TARGET => "XENMEM_get_pod_target",
        memory::XENMEM_GET_SHARING_FREED_PAGES => "XENMEM_get_sharing_freed_pages",
        memory::XENMEM_GET_SHARING_SHARED_PAGES => "XENMEM_get_sharing_shared_pages",
        memory::XENMEM_PAGING_OP => "XENMEM_paging_op",
        memory::XENMEM_ACCESS_OP => "XENMEM_access_op",
        memory::XENMEM_SHARING_OP => "XENMEM_sharing_op",
        memory::XENMEM_ADD_TO_PHYSMAP_BATCH => "XENMEM_add_to_physmap_batch",
        memory::XENMEM_CLAIM_PAGES => "XENMEM_claim_pages",
        memory::XENMEM_MACHPHYS_COMPAT_MFN_LIST => "XENMEM_machphys_compat_mfn_list",
        memory::XENMEM_GET_VNUMAINFO => "XENMEM_get_vnumainfo",
        memory::XENMEM_RESERVED_DEVICE_MEMORY_MAP => "XENMEM_reserved_device_memory_map",
        memory::XENMEM_ACQUIRE_RESOURCE => "XENMEM_acquire_resource",
        memory::XENMEMF_POPULATE_ON_DEMAND => "XENMEMF_populate_on_demand",
        memory::XENMEMF_EXACT_NODE_REQUEST => "XENMEMF_exact_node_request",
        memory::XENMEMF_VNODE => "XENMEMF_vnode",
        memory::NUMA_NO_NODE => "XENMEMF_get_node(0)",
        memory::SHARED_INFO_ARCH_MAX_PFN => "offsetof(struct shared_info, arch.max_pfn)",
        memory::RESERVATION_SIZE => "sizeof(struct xen_memory_reservation)",
        memory::EXCHANGE_NR_EXCHANGED => "offsetof(struct xen_memory_exchange, nr_exchanged)",
        memory::EXCHANGE_SIZE => "sizeof(struct xen_memory_exchange)",
        memory::MEMORY_MAP_SIZE => "sizeof(struct xen_memory_map)",
        memory::MACHPHYS_MAPPING_SIZE => "sizeof(struct xen_machphys_mapping)",
        memory::MFN_LIST_NR_EXTENTS => "offsetof(struct xen_machphys_mfn_list, nr_extents)",
        memory::MFN_LIST_SIZE => "sizeof(struct xen_machphys_mfn_list)",
        // start_info.flags (xen.h).
        sif::PRIVILEGED => "SIF_PRIVILEGED",
        sif::INITDOMAIN => "SIF_INITDOMAIN",
        sif::MULTIBOOT_MOD => "SIF_MULTIBOOT_MOD",
        sif::MOD_START_PFN => "SIF_MOD_START_PFN",
        sif::VIRT_P2M_4TOOLS => "SIF_VIRT_P2M_4TOOLS",
        // Reserved L4 slots: the L4 indices of Xen's hole (arch-x86/xen-x86_64.h).
        abi::ROOT_PAGETABLE_FIRST_XEN_SLOT => "((HYPERVISOR_VIRT_START >> 39) & 511)",
        abi::ROOT_PAGETABLE_LAST_XEN_SLOT => "(((HYPERVISOR_VIRT_END - 1) >> 39) & 511)",
        abi::MAX_GUEST_CMDLINE => "MAX_GUEST_CMDLINE",
        // start_info offsets we publish as constants.
        start_info_offset::MAGIC => "offsetof(struct start_info, magic)",
        start_info_offset::NR_PAGES => "offsetof(struct start_info, nr_pages)",
        start_info_offset::SHARED_INFO => "offsetof(struct start_info, shared_info)",
        start_info_offset::FLAGS => "offsetof(struct start_info, flags)",
        start_info_offset::STORE_MFN => "offsetof(struct start_info, store_mfn)",
        start_info_offset::STORE_EVTCHN => "offsetof(struct start_info, store_evtchn)",
        start_info_offset::CONSOLE => "offsetof(struct start_info, console)",
        start_info_offset::PT_BASE => "offsetof(struct start_info, pt_base)",
        start_info_offset::NR_PT_FRAMES => "offsetof(struct start_info, nr_pt_frames)",
        start_info_offset::MFN_LIST => "offsetof(struct start_info, mfn_list)",
        start_info_offset::MOD_START => "offsetof(struct start_info, mod_start)",
        start_info_offset::MOD_LEN => "offsetof(struct start_info, mod_len)",
        start_info_offset::CMD_LINE => "offsetof(struct start_info, cmd_line)",
        start_info_offset::FIRST_P2M_PFN => "offsetof(struct start_info, first_p2m_pfn)",
        start_info_offset::NR_P2M_FRAMES => "offsetof(struct start_info, nr_p2m_frames)",
        start_info_offset::SIZE => "sizeof(struct start_info)",
        // pte.rs: Xen's public headers carry no _PAGE_* bits; only the page size is
        // derivable (xen_pfn_to_cr3 shifts a frame number into an address).
        pte::PAGE_SIZE => "xen_pfn_to_cr3(1)",
        pte::PAGE_SHIFT => "__builtin_ctzl(xen_pfn_to_cr3(1))",
    }
}

fn layout_checks() -> Vec<Check> {
    const MU: &str = "struct mmu_update";
    const MX: &str = "struct mmuext_op";
    const MC: &str = "struct multicall_entry";
    const SI: &str = "struct start_info";
    let mut v = vec![
        size_check("MmuUpdate", MU, size_of::<MmuUpdate>()),
        size_check("MmuextOp", MX, size_of::<MmuextOp>()),
        size_check("MulticallEntry", MC, size_of::<MulticallEntry>()),
        size_check("StartInfo", SI, size_of::<StartInfo>()),
    ];
    const TI: &str = "struct trap_info";
    const IC: &str = "struct iret_context";
    const CB: &str = "struct callback_register";
    v.push(size_check("TrapInfo", TI, size_of::<TrapInfo>()));
    v.push(size_check("IretContext", IC, size_of::<IretContext>()));
    v.push(size_check(
        "CallbackRegister",
        CB,
        size_of::<CallbackRegister>(),
    ));
    const RV: &str = "struct vcpu_register_vcpu_info";
    const SP: &str = "struct sched_poll";
    v.push(size_check(
        "VcpuRegisterVcpuInfo",
        RV,
        size_of::<VcpuRegisterVcpuInfo>(),
    ));
    v.extend(field!(VcpuRegisterVcpuInfo, mfn, RV, "mfn"));
    v.extend(field!(VcpuRegisterVcpuInfo, offset, RV, "offset"));
    v.extend(field!(VcpuRegisterVcpuInfo, rsvd, RV, "rsvd"));
    v.push(size_check("SchedPoll", SP, size_of::<SchedPoll>()));
    v.extend(field!(SchedPoll, ports, SP, "ports"));
    v.extend(field!(SchedPoll, nr_ports, SP, "nr_ports"));
    v.extend(pad!(SchedPoll, _pad, SP, "nr_ports", "timeout"));
    v.extend(field!(SchedPoll, timeout, SP, "timeout"));
    v.extend(field!(TrapInfo, vector, TI, "vector"));
    v.extend(field!(TrapInfo, flags, TI, "flags"));
    v.extend(field!(TrapInfo, cs, TI, "cs"));
    v.extend(pad!(TrapInfo, _pad, TI, "cs", "address"));
    v.extend(field!(TrapInfo, address, TI, "address"));
    for f in [
        "rax", "r11", "rcx", "flags", "rip", "cs", "rflags", "rsp", "ss",
    ] {
        let (off, size) = match f {
            "rax" => (offset_of!(IretContext, rax), 8),
            "r11" => (offset_of!(IretContext, r11), 8),
            "rcx" => (offset_of!(IretContext, rcx), 8),
            "flags" => (offset_of!(IretContext, flags), 8),
            "rip" => (offset_of!(IretContext, rip), 8),
            "cs" => (offset_of!(IretContext, cs), 8),
            "rflags" => (offset_of!(IretContext, rflags), 8),
            "rsp" => (offset_of!(IretContext, rsp), 8),
            _ => (offset_of!(IretContext, ss), 8),
        };
        v.push(Check {
            ours: format!("IretContext.{f}@offset"),
            c_expr: format!("offsetof({IC}, {f})"),
            value: off as i128,
        });
        v.push(Check {
            ours: format!("IretContext.{f}@size"),
            c_expr: format!("sizeof((({IC} *)0)->{f})"),
            value: size as i128,
        });
    }
    v.extend(field!(CallbackRegister, ty, CB, "type"));
    v.extend(field!(CallbackRegister, flags, CB, "flags"));
    v.extend(pad!(CallbackRegister, _pad, CB, "flags", "address"));
    v.extend(field!(CallbackRegister, address, CB, "address"));
    v.extend(field!(MmuUpdate, ptr, MU, "ptr"));
    v.extend(field!(MmuUpdate, val, MU, "val"));

    v.extend(field!(MmuextOp, cmd, MX, "cmd"));
    v.extend(pad!(MmuextOp, _pad, MX, "cmd", "arg1"));
    v.extend(field!(MmuextOp, arg1, MX, "arg1"));
    v.extend(field!(MmuextOp, arg2, MX, "arg2"));
    // Every union member starts where our single u64 does (x86 is little-endian,
    // so a 32-bit nr_ents is the low half of arg2).
    for member in ["arg1.mfn", "arg1.linear_addr"] {
        v.push(Check {
            ours: format!("MmuextOp.arg1@offset (as {member})"),
            c_expr: format!("offsetof({MX}, {member})"),
            value: offset_of!(MmuextOp, arg1) as i128,
        });
    }
    for member in ["arg2.nr_ents", "arg2.vcpumask", "arg2.src_mfn"] {
        v.push(Check {
            ours: format!("MmuextOp.arg2@offset (as {member})"),
            c_expr: format!("offsetof({MX}, {member})"),
            value: offset_of!(MmuextOp, arg2) as i128,
        });
    }

    v.extend(field!(MulticallEntry, op, MC, "op"));
    v.extend(field!(MulticallEntry, result, MC, "result"));
    v.extend(field!(MulticallEntry, args, MC, "args"));
    v.push(Check {
        ours: "MulticallEntry.args[0]@size".into(),
        c_expr: format!("sizeof((({MC} *)0)->args[0])"),
        value: size_of::<u64>() as i128,
    });

    {
        use memory::{
            MachphysMapping, MachphysMfnList, MemoryExchange, MemoryMap, MemoryReservation,
        };
        const MR: &str = "struct xen_memory_reservation";
        const ME: &str = "struct xen_memory_exchange";
        const MM: &str = "struct xen_memory_map";
        const MP: &str = "struct xen_machphys_mapping";
        const ML: &str = "struct xen_machphys_mfn_list";
        v.push(size_check(
            "MemoryReservation",
            MR,
            size_of::<MemoryReservation>(),
        ));
        v.push(size_check(
            "MemoryExchange",
            ME,
            size_of::<MemoryExchange>(),
        ));
        v.push(size_check("MemoryMap", MM, size_of::<MemoryMap>()));
        v.push(size_check(
            "MachphysMapping",
            MP,
            size_of::<MachphysMapping>(),
        ));
        v.push(size_check(
            "MachphysMfnList",
            ML,
            size_of::<MachphysMfnList>(),
        ));
        v.extend(field!(MemoryReservation, extent_start, MR, "extent_start"));
        v.extend(field!(MemoryReservation, nr_extents, MR, "nr_extents"));
        v.extend(field!(MemoryReservation, extent_order, MR, "extent_order"));
        v.extend(field!(MemoryReservation, mem_flags, MR, "mem_flags"));
        v.extend(field!(MemoryReservation, domid, MR, "domid"));
        v.extend(pad!(MemoryReservation, _pad, MR, "domid"));
        v.extend(field!(MemoryExchange, input, ME, "in"));
        v.extend(field!(MemoryExchange, output, ME, "out"));
        v.extend(field!(MemoryExchange, nr_exchanged, ME, "nr_exchanged"));
        v.extend(field!(MemoryMap, nr_entries, MM, "nr_entries"));
        v.extend(pad!(MemoryMap, _pad, MM, "nr_entries", "buffer"));
        v.extend(field!(MemoryMap, buffer, MM, "buffer"));
        v.extend(field!(MachphysMapping, v_start, MP, "v_start"));
        v.extend(field!(MachphysMapping, v_end, MP, "v_end"));
        v.extend(field!(MachphysMapping, max_mfn, MP, "max_mfn"));
        v.extend(field!(MachphysMfnList, max_extents, ML, "max_extents"));
        v.extend(pad!(
            MachphysMfnList,
            _pad0,
            ML,
            "max_extents",
            "extent_start"
        ));
        v.extend(field!(MachphysMfnList, extent_start, ML, "extent_start"));
        v.extend(field!(MachphysMfnList, nr_extents, ML, "nr_extents"));
        v.extend(pad!(MachphysMfnList, _pad1, ML, "nr_extents"));
    }
    v.extend(field!(StartInfo, magic, SI, "magic"));
    v.extend(field!(StartInfo, nr_pages, SI, "nr_pages"));
    v.extend(field!(StartInfo, shared_info, SI, "shared_info"));
    v.extend(field!(StartInfo, flags, SI, "flags"));
    v.extend(pad!(StartInfo, _pad0, SI, "flags", "store_mfn"));
    v.extend(field!(StartInfo, store_mfn, SI, "store_mfn"));
    v.extend(field!(StartInfo, store_evtchn, SI, "store_evtchn"));
    v.extend(pad!(StartInfo, _pad1, SI, "store_evtchn", "console"));
    v.extend(field!(StartInfo, console_mfn, SI, "console.domU.mfn"));
    v.extend(field!(StartInfo, console_evtchn, SI, "console.domU.evtchn"));
    v.extend(pad!(StartInfo, _pad2, SI, "console.domU.evtchn", "pt_base"));
    v.push(Check {
        ours: "StartInfo.console_mfn@offset (as console.dom0.info_off)".into(),
        c_expr: format!("offsetof({SI}, console.dom0.info_off)"),
        value: offset_of!(StartInfo, console_mfn) as i128,
    });
    v.extend(field!(StartInfo, pt_base, SI, "pt_base"));
    v.extend(field!(StartInfo, nr_pt_frames, SI, "nr_pt_frames"));
    v.extend(field!(StartInfo, mfn_list, SI, "mfn_list"));
    v.extend(field!(StartInfo, mod_start, SI, "mod_start"));
    v.extend(field!(StartInfo, mod_len, SI, "mod_len"));
    v.extend(field!(StartInfo, cmd_line, SI, "cmd_line"));
    v.extend(field!(StartInfo, first_p2m_pfn, SI, "first_p2m_pfn"));
    v.extend(field!(StartInfo, nr_p2m_frames, SI, "nr_p2m_frames"));
    v
}

/// Header values the Rust side reasons about directly (not compared one-to-one).
const HEADER_VALUES: &[(&str, &str)] = &[
    ("HYPERVISOR_VIRT_START", "HYPERVISOR_VIRT_START"),
    ("HYPERVISOR_VIRT_END", "HYPERVISOR_VIRT_END"),
];

/// `neg!(path, "C expr")`: a negative constant (a GNTST_* status), compared negated so the
/// C side prints a positive value.
macro_rules! neg {
    ($ours:path, $c:expr) => {
        Check {
            ours: stringify!($ours).replace(' ', ""),
            c_expr: format!("-({})", $c),
            value: -($ours as i128),
        }
    };
}

// One file per area of abi/ (after the macros, which they use).
#[path = "abi_layout/evtchn.rs"]
mod evtchn_checks;
#[path = "abi_layout/gnttab.rs"]
mod gnttab_checks;
#[path = "abi_layout/physdev.rs"]
mod physdev_checks;
#[path = "abi_layout/platform.rs"]
mod platform_checks;
#[path = "abi_layout/vcpuop.rs"]
mod vcpuop_checks;

/// The areas' constant rows and layout rows.
fn area_checks() -> (Vec<Check>, Vec<Check>) {
    let mut constants = evtchn_checks::constant_checks();
    constants.extend(gnttab_checks::constant_checks());
    constants.extend(physdev_checks::constant_checks());
    constants.extend(platform_checks::constant_checks());
    constants.extend(vcpuop_checks::constant_checks());
    let mut layouts = evtchn_checks::layout_checks();
    layouts.extend(gnttab_checks::layout_checks());
    layouts.extend(physdev_checks::layout_checks());
    layouts.extend(platform_checks::layout_checks());
    layouts.extend(vcpuop_checks::layout_checks());
    (constants, layouts)
}

/// Every name `Hypercall` gives is Xen's: `__HYPERVISOR_<name>` is its number.
fn hypercall_name_checks() -> Vec<Check> {
    (0..hypercall::NR_STUBS)
        .filter_map(|nr| {
            let name = hypercall::Hypercall::from_nr(nr).name()?;
            Some(Check {
                ours: format!("Hypercall::from_nr({nr}).name() = {name}"),
                c_expr: format!("__HYPERVISOR_{name}"),
                value: nr as i128,
            })
        })
        .collect()
}

fn all_checks() -> Vec<Check> {
    let (area_constants, area_layouts) = area_checks();
    let mut v = constant_checks();
    v.extend(area_constants);
    v.extend(hypercall_name_checks());
    v.extend(layout_checks());
    v.extend(area_layouts);
    v
}

/// Our guest VA layout must stay clear of Xen's hole, and our slot helpers must
/// land the reserved slots exactly on it.
fn layout_vs_hole(c_values: &BTreeMap<String, u64>) -> Vec<String> {
    use pte::layout::*;
    let start = header_value(c_values, "HYPERVISOR_VIRT_START");
    let end = header_value(c_values, "HYPERVISOR_VIRT_END"); // exclusive
    let mut bad = Vec::new();
    let regions = [
        ("DIRECT_MAP", DIRECT_MAP_BASE, DIRECT_MAP_END),
        ("VMALLOC", VMALLOC_BASE, VMALLOC_END),
        ("PKMAP", PKMAP_BASE, PKMAP_END),
        ("FIXMAP", FIXMAP_BASE, FIXMAP_END),
        ("KERNEL", KERNEL_BASE, KERNEL_END),
        ("USER", 0, USER_END),
    ];
    for (name, lo, hi) in regions {
        if lo < end && hi >= start {
            bad.push(format!(
                "pte::layout::{name} {lo:#x}..={hi:#x} overlaps Xen's hole {start:#x}..{end:#x}"
            ));
        }
    }
    let first = pte::va_of(abi::ROOT_PAGETABLE_FIRST_XEN_SLOT, 0, 0, 0);
    if first != start {
        bad.push(format!(
            "pte::va_of(FIRST_XEN_SLOT,0,0,0) = {first:#x}, HYPERVISOR_VIRT_START = {start:#x}"
        ));
    }
    let last = pte::va_of(abi::ROOT_PAGETABLE_LAST_XEN_SLOT, 511, 511, 511) + pte::PAGE_SIZE - 1;
    if last != end - 1 {
        bad.push(format!(
            "last byte of LAST_XEN_SLOT = {last:#x}, HYPERVISOR_VIRT_END - 1 = {:#x}",
            end - 1
        ));
    }
    bad
}

#[test]
fn abi_matches_libxen_dev_headers() {
    let checks = all_checks();
    let c_values = run_c(&checks, HEADER_VALUES, "main");
    let mut bad = mismatches(&checks, &c_values);
    bad.extend(layout_vs_hole(&c_values));
    assert!(
        bad.is_empty(),
        "{} of {} ABI values differ from Xen's headers (libxen-dev):\n  {}",
        bad.len(),
        checks.len(),
        bad.join("\n  ")
    );
    let (area_constants, area_layouts) = area_checks();
    println!(
        "abi_layout: {} values checked against libxen-dev ({} constants, {} layout rows)",
        checks.len(),
        constant_checks().len() + area_constants.len(),
        layout_checks().len() + area_layouts.len()
    );
}

/// The comparison itself must be able to fail: feed it values we know are wrong
/// (the pre-fix MMUEXT numbering, a wrong struct offset) and expect each reported.
#[test]
fn layout_test_reports_every_mismatch() {
    let mut checks = vec![
        check!(mmuext::PIN_L1_TABLE, "MMUEXT_PIN_L1_TABLE"),
        check!(mmuext::MARK_SUPER, "MMUEXT_MARK_SUPER"),
        check!(errno::EINVAL, "XENKVM_EINVAL"),
    ];
    checks.extend(field!(StartInfo, pt_base, "struct start_info", "pt_base"));
    let c_values = run_c(&checks, HEADER_VALUES, "selftest");
    assert!(mismatches(&checks, &c_values).is_empty());

    // The old abi had MARK_SUPER = 18 (that is FLUSH_CACHE_GLOBAL in the headers).
    checks[1].value = 18;
    checks[2].value = 21;
    checks[3].value += 8;
    let bad = mismatches(&checks, &c_values);
    assert_eq!(bad.len(), 3, "expected three mismatches, got {bad:#?}");
    assert!(bad[0].contains("mmuext::MARK_SUPER") && bad[0].contains("MMUEXT_MARK_SUPER"));
    assert!(bad[1].contains("errno::EINVAL"));
    assert!(bad[2].contains("StartInfo.pt_base@offset"));
}

/// Adding a constant or field to abi/ without a row here must fail.
#[test]
fn every_abi_rs_item_is_checked() {
    let declared = declared_in_abi_rs();
    assert!(
        declared.len() > 150,
        "parser found only {} items in abi/; has its layout changed?",
        declared.len()
    );
    let mut covered: BTreeSet<String> = all_checks()
        .iter()
        .map(|c| {
            let name = c.ours.split('@').next().unwrap();
            name.strip_prefix("abi::").unwrap_or(name).to_string()
        })
        .collect();
    covered.extend(EXEMPT.iter().map(|(n, _)| n.to_string()));
    let missing: Vec<_> = declared.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "abi/ items with no check in tests/tests/abi_layout.rs (add a row, or an \
         EXEMPT entry with the reason): {missing:?}"
    );
    // And no stale exemption: each names something abi/ declares and no row checks.
    for (name, _) in EXEMPT {
        assert!(declared.contains(*name), "EXEMPT names {name}, not in abi/");
        assert!(
            !all_checks()
                .iter()
                .any(|c| c.ours.split('@').next() == Some(*name)),
            "EXEMPT names {name}, which a row already checks"
        );
    }
}
