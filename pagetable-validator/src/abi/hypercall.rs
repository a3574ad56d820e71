//! Hypercall numbers (`__HYPERVISOR_*`, xen.h).

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
