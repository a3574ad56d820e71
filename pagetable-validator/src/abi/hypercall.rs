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

/// `hypercalls! { Variant = CONST, "name"; ... }`: the [`Hypercall`] enum and its three
/// mappings from one list, so a number, its variant and its name cannot disagree.
macro_rules! hypercalls {
    ($($variant:ident = $nr:ident, $name:literal;)*) => {
        /// A hypercall number as the guest gave it: one of xen.h's that this module names
        /// (0..=37; Xen 4.17 also has tmem, argo, xenpmu, dm, hypfs and arch_N), or `Unknown`.
        /// Made only by [`Hypercall::from_nr`], so `Unknown` never holds a defined number.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Hypercall {
            $($variant,)*
            Unknown(u64),
        }

        impl Hypercall {
            pub const fn from_nr(nr: u64) -> Self {
                match nr {
                    $($nr => Hypercall::$variant,)*
                    _ => Hypercall::Unknown(nr),
                }
            }

            pub const fn nr(self) -> u64 {
                match self {
                    $(Hypercall::$variant => $nr,)*
                    Hypercall::Unknown(nr) => nr,
                }
            }

            /// Xen's name without `__HYPERVISOR_`, for logs and summaries; `None` for
            /// `Unknown`.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $(Hypercall::$variant => Some($name),)*
                    Hypercall::Unknown(_) => None,
                }
            }
        }
    };
}

hypercalls! {
    SetTrapTable = SET_TRAP_TABLE, "set_trap_table";
    MmuUpdate = MMU_UPDATE, "mmu_update";
    SetGdt = SET_GDT, "set_gdt";
    StackSwitch = STACK_SWITCH, "stack_switch";
    SetCallbacks = SET_CALLBACKS, "set_callbacks";
    FpuTaskswitch = FPU_TASKSWITCH, "fpu_taskswitch";
    SchedOpCompat = SCHED_OP_COMPAT, "sched_op_compat";
    PlatformOp = PLATFORM_OP, "platform_op";
    SetDebugreg = SET_DEBUGREG, "set_debugreg";
    GetDebugreg = GET_DEBUGREG, "get_debugreg";
    UpdateDescriptor = UPDATE_DESCRIPTOR, "update_descriptor";
    MemoryOp = MEMORY_OP, "memory_op";
    Multicall = MULTICALL, "multicall";
    UpdateVaMapping = UPDATE_VA_MAPPING, "update_va_mapping";
    SetTimerOp = SET_TIMER_OP, "set_timer_op";
    EventChannelOpCompat = EVENT_CHANNEL_OP_COMPAT, "event_channel_op_compat";
    XenVersion = XEN_VERSION, "xen_version";
    ConsoleIo = CONSOLE_IO, "console_io";
    PhysdevOpCompat = PHYSDEV_OP_COMPAT, "physdev_op_compat";
    GrantTableOp = GRANT_TABLE_OP, "grant_table_op";
    VmAssist = VM_ASSIST, "vm_assist";
    UpdateVaMappingOtherdomain = UPDATE_VA_MAPPING_OTHERDOMAIN, "update_va_mapping_otherdomain";
    Iret = IRET, "iret";
    VcpuOp = VCPU_OP, "vcpu_op";
    SetSegmentBase = SET_SEGMENT_BASE, "set_segment_base";
    MmuextOp = MMUEXT_OP, "mmuext_op";
    XsmOp = XSM_OP, "xsm_op";
    NmiOp = NMI_OP, "nmi_op";
    SchedOp = SCHED_OP, "sched_op";
    CallbackOp = CALLBACK_OP, "callback_op";
    XenoprofOp = XENOPROF_OP, "xenoprof_op";
    EventChannelOp = EVENT_CHANNEL_OP, "event_channel_op";
    PhysdevOp = PHYSDEV_OP, "physdev_op";
    HvmOp = HVM_OP, "hvm_op";
    Sysctl = SYSCTL, "sysctl";
    Domctl = DOMCTL, "domctl";
    KexecOp = KEXEC_OP, "kexec_op";
}

impl core::fmt::Display for Hypercall {
    /// `mmu_update`, or `hypercall 99` for an unnamed number.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "hypercall {}", self.nr()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_nr_and_nr_are_inverse_and_unknown_only_for_undefined_numbers() {
        let mut named = 0;
        for nr in (0..NR_STUBS).chain([u64::MAX, 1 << 32]) {
            let h = Hypercall::from_nr(nr);
            assert_eq!(h.nr(), nr);
            match h {
                Hypercall::Unknown(_) => assert!(h.name().is_none(), "{nr}"),
                _ => named += 1,
            }
        }
        // xen.h's 0..=37, less 11 (unused since the 3.0 update_descriptor change).
        assert_eq!(named, 37);
        assert_eq!(Hypercall::from_nr(11), Hypercall::Unknown(11));
        assert_eq!(Hypercall::from_nr(MMUEXT_OP).to_string(), "mmuext_op");
        assert_eq!(Hypercall::from_nr(99).to_string(), "hypercall 99");
    }
}
