//! `vcpu_op` (`vcpu.h`): sub-commands, runstates and argument sizes.

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
