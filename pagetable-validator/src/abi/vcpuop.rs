//! `vcpu_op` (`vcpu.h`): sub-commands, runstates, argument sizes and structures.

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
/// `struct vcpu_guest_context` (x86_64), which VCPUOP_initialise reads whole.
pub const VCPU_GUEST_CONTEXT_SIZE: usize = 5168;

/// `struct vcpu_set_periodic_timer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuSetPeriodicTimer {
    pub period_ns: u64,
}

/// `struct vcpu_set_singleshot_timer`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VcpuSetSingleshotTimer {
    pub timeout_abs_ns: u64,
    pub flags: u32,
    pub _pad: u32,
}
