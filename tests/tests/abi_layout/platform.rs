//! `platform_op` (platform.h): commands, flags, `struct xen_platform_op` and the members of
//! its union.

use super::{field_size, size_check, Check};
use pagetable_validator::abi::platform::{
    self, XenPlatformOp, XenpfEnterAcpiSleep, XenpfFirmwareInfo, XenpfPcpuVersion, XenpfPcpuinfo,
    XenpfSettime32, XenpfSettime64,
};
use std::mem::{offset_of, size_of};

pub fn constant_checks() -> Vec<Check> {
    consts! {
        platform::XENPF_INTERFACE_VERSION => "XENPF_INTERFACE_VERSION",
        platform::XENPF_SETTIME32 => "XENPF_settime32",
        platform::XENPF_SETTIME64 => "XENPF_settime64",
        platform::XENPF_ADD_MEMTYPE => "XENPF_add_memtype",
        platform::XENPF_DEL_MEMTYPE => "XENPF_del_memtype",
        platform::XENPF_READ_MEMTYPE => "XENPF_read_memtype",
        platform::XENPF_MICROCODE_UPDATE => "XENPF_microcode_update",
        platform::XENPF_PLATFORM_QUIRK => "XENPF_platform_quirk",
        platform::XENPF_EFI_RUNTIME_CALL => "XENPF_efi_runtime_call",
        platform::XENPF_FIRMWARE_INFO => "XENPF_firmware_info",
        platform::XENPF_ENTER_ACPI_SLEEP => "XENPF_enter_acpi_sleep",
        platform::XENPF_CHANGE_FREQ => "XENPF_change_freq",
        platform::XENPF_GETIDLETIME => "XENPF_getidletime",
        platform::XENPF_SET_PROCESSOR_PMINFO => "XENPF_set_processor_pminfo",
        platform::XENPF_GET_CPUINFO => "XENPF_get_cpuinfo",
        platform::XENPF_GET_CPU_VERSION => "XENPF_get_cpu_version",
        platform::XENPF_CPU_ONLINE => "XENPF_cpu_online",
        platform::XENPF_CPU_OFFLINE => "XENPF_cpu_offline",
        platform::XENPF_CPU_HOTADD => "XENPF_cpu_hotadd",
        platform::XENPF_MEM_HOTADD => "XENPF_mem_hotadd",
        platform::XENPF_CORE_PARKING => "XENPF_core_parking",
        platform::XENPF_RESOURCE_OP => "XENPF_resource_op",
        platform::XENPF_GET_SYMBOL => "XENPF_get_symbol",
        platform::XEN_FW_DISK_INFO => "XEN_FW_DISK_INFO",
        platform::XEN_FW_DISK_MBR_SIGNATURE => "XEN_FW_DISK_MBR_SIGNATURE",
        platform::XEN_FW_VBEDDC_INFO => "XEN_FW_VBEDDC_INFO",
        platform::XEN_FW_EFI_INFO => "XEN_FW_EFI_INFO",
        platform::XEN_FW_KBD_SHIFT_FLAGS => "XEN_FW_KBD_SHIFT_FLAGS",
        platform::XENPF_ACPI_SLEEP_EXTENDED => "XENPF_ACPI_SLEEP_EXTENDED",
        platform::XEN_PCPU_FLAGS_ONLINE => "XEN_PCPU_FLAGS_ONLINE",
        platform::XEN_PCPU_FLAGS_INVALID => "XEN_PCPU_FLAGS_INVALID",
    }
}

pub fn layout_checks() -> Vec<Check> {
    const OP: &str = "struct xen_platform_op";
    const T32: &str = "struct xenpf_settime32";
    const T64: &str = "struct xenpf_settime64";
    const FW: &str = "struct xenpf_firmware_info";
    const SLEEP: &str = "struct xenpf_enter_acpi_sleep";
    const INFO: &str = "struct xenpf_pcpuinfo";
    const VER: &str = "struct xenpf_pcpu_version";
    let mut v = vec![
        size_check("XenPlatformOp", OP, size_of::<XenPlatformOp>()),
        size_check("XenpfSettime32", T32, size_of::<XenpfSettime32>()),
        size_check("XenpfSettime64", T64, size_of::<XenpfSettime64>()),
        size_check("XenpfFirmwareInfo", FW, size_of::<XenpfFirmwareInfo>()),
        size_check(
            "XenpfEnterAcpiSleep",
            SLEEP,
            size_of::<XenpfEnterAcpiSleep>(),
        ),
        size_check("XenpfPcpuinfo", INFO, size_of::<XenpfPcpuinfo>()),
        size_check("XenpfPcpuVersion", VER, size_of::<XenpfPcpuVersion>()),
    ];
    v.extend(field!(XenPlatformOp, cmd, OP, "cmd"));
    v.extend(field!(
        XenPlatformOp,
        interface_version,
        OP,
        "interface_version"
    ));
    v.extend(field!(XenPlatformOp, u, OP, "u"));
    // Each member the VMM decodes starts at `u` (and fits in it: the sizes above).
    for member in [
        "u.settime32",
        "u.settime64",
        "u.firmware_info",
        "u.enter_acpi_sleep",
        "u.pcpu_info",
        "u.pcpu_version",
    ] {
        v.push(Check {
            ours: format!("XenPlatformOp.u@offset (as {member})"),
            c_expr: format!("offsetof({OP}, {member})"),
            value: offset_of!(XenPlatformOp, u) as i128,
        });
    }
    v.extend(field!(XenpfSettime32, secs, T32, "secs"));
    v.extend(field!(XenpfSettime32, nsecs, T32, "nsecs"));
    v.extend(field!(XenpfSettime32, system_time, T32, "system_time"));
    v.extend(field!(XenpfSettime64, secs, T64, "secs"));
    v.extend(field!(XenpfSettime64, nsecs, T64, "nsecs"));
    v.extend(field!(XenpfSettime64, mbz, T64, "mbz"));
    v.extend(field!(XenpfSettime64, system_time, T64, "system_time"));
    v.extend(field!(XenpfFirmwareInfo, ty, FW, "type"));
    v.extend(field!(XenpfFirmwareInfo, index, FW, "index"));
    v.extend(field!(XenpfFirmwareInfo, u, FW, "u"));
    v.push(Check {
        ours: "XenpfFirmwareInfo.u@offset (as u.kbd_shift_flags)".into(),
        c_expr: format!("offsetof({FW}, u.kbd_shift_flags)"),
        value: offset_of!(XenpfFirmwareInfo, u) as i128,
    });
    v.extend(field!(XenpfEnterAcpiSleep, val_a, SLEEP, "val_a"));
    v.extend(field!(XenpfEnterAcpiSleep, val_b, SLEEP, "val_b"));
    v.extend(field!(
        XenpfEnterAcpiSleep,
        sleep_state,
        SLEEP,
        "sleep_state"
    ));
    v.extend(field!(XenpfEnterAcpiSleep, flags, SLEEP, "flags"));
    v.extend(field!(XenpfPcpuinfo, xen_cpuid, INFO, "xen_cpuid"));
    v.extend(field!(XenpfPcpuinfo, max_present, INFO, "max_present"));
    v.extend(field!(XenpfPcpuinfo, flags, INFO, "flags"));
    v.extend(field!(XenpfPcpuinfo, apic_id, INFO, "apic_id"));
    v.extend(field!(XenpfPcpuinfo, acpi_id, INFO, "acpi_id"));
    v.extend(field!(XenpfPcpuVersion, xen_cpuid, VER, "xen_cpuid"));
    v.extend(field!(XenpfPcpuVersion, max_present, VER, "max_present"));
    v.extend(field!(XenpfPcpuVersion, vendor_id, VER, "vendor_id"));
    v.extend(field!(XenpfPcpuVersion, family, VER, "family"));
    v.extend(field!(XenpfPcpuVersion, model, VER, "model"));
    v.extend(field!(XenpfPcpuVersion, stepping, VER, "stepping"));
    v
}
