//! `vcpu_op` (vcpu.h): sub-commands, runstates, argument sizes and structures.

use super::{field_size, size_check, Check};
use pagetable_validator::abi::vcpuop::{self, VcpuSetPeriodicTimer, VcpuSetSingleshotTimer};
use std::mem::{offset_of, size_of};

pub fn constant_checks() -> Vec<Check> {
    consts! {
        vcpuop::VCPUOP_INITIALISE => "VCPUOP_initialise",
        vcpuop::VCPUOP_UP => "VCPUOP_up",
        vcpuop::VCPUOP_DOWN => "VCPUOP_down",
        vcpuop::VCPUOP_IS_UP => "VCPUOP_is_up",
        vcpuop::VCPUOP_GET_RUNSTATE_INFO => "VCPUOP_get_runstate_info",
        vcpuop::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => "VCPUOP_register_runstate_memory_area",
        vcpuop::VCPUOP_SET_PERIODIC_TIMER => "VCPUOP_set_periodic_timer",
        vcpuop::VCPUOP_STOP_PERIODIC_TIMER => "VCPUOP_stop_periodic_timer",
        vcpuop::VCPUOP_SET_SINGLESHOT_TIMER => "VCPUOP_set_singleshot_timer",
        vcpuop::VCPUOP_STOP_SINGLESHOT_TIMER => "VCPUOP_stop_singleshot_timer",
        vcpuop::VCPUOP_REGISTER_VCPU_INFO => "VCPUOP_register_vcpu_info",
        vcpuop::VCPUOP_SEND_NMI => "VCPUOP_send_nmi",
        vcpuop::VCPUOP_GET_PHYSID => "VCPUOP_get_physid",
        vcpuop::VCPUOP_REGISTER_VCPU_TIME_MEMORY_AREA => "VCPUOP_register_vcpu_time_memory_area",
        vcpuop::RUNSTATE_RUNNING => "RUNSTATE_running",
        vcpuop::RUNSTATE_RUNNABLE => "RUNSTATE_runnable",
        vcpuop::RUNSTATE_BLOCKED => "RUNSTATE_blocked",
        vcpuop::RUNSTATE_OFFLINE => "RUNSTATE_offline",
        vcpuop::XEN_RUNSTATE_UPDATE => "XEN_RUNSTATE_UPDATE",
        vcpuop::RUNSTATE_INFO_SIZE => "sizeof(struct vcpu_runstate_info)",
        vcpuop::VCPU_GUEST_CONTEXT_SIZE => "sizeof(struct vcpu_guest_context)",
    }
}

pub fn layout_checks() -> Vec<Check> {
    const PT: &str = "struct vcpu_set_periodic_timer";
    const ST: &str = "struct vcpu_set_singleshot_timer";
    let mut v = vec![
        size_check(
            "VcpuSetPeriodicTimer",
            PT,
            size_of::<VcpuSetPeriodicTimer>(),
        ),
        size_check(
            "VcpuSetSingleshotTimer",
            ST,
            size_of::<VcpuSetSingleshotTimer>(),
        ),
    ];
    v.extend(field!(VcpuSetPeriodicTimer, period_ns, PT, "period_ns"));
    v.extend(field!(
        VcpuSetSingleshotTimer,
        timeout_abs_ns,
        ST,
        "timeout_abs_ns"
    ));
    v.extend(field!(VcpuSetSingleshotTimer, flags, ST, "flags"));
    v.extend(pad!(VcpuSetSingleshotTimer, _pad, ST, "flags"));
    v
}
