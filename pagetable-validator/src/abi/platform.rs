//! `platform_op` (platform.h): commands, flags, `struct xen_platform_op` and the members of
//! its union that the VMM serves.

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

/// `struct xen_platform_op`. Xen copies it whole; its union `u` (128 bytes, 8-aligned) is
/// kept as raw words because Rust has no safe unions: each command's member (the `Xenpf*`
/// structs below) is copied out of, and written back at, the start of `u`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenPlatformOp {
    pub cmd: u32,
    pub interface_version: u32,
    pub u: [u64; 16],
}

/// `struct xenpf_settime32`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenpfSettime32 {
    pub secs: u32,
    pub nsecs: u32,
    pub system_time: u64,
}

/// `struct xenpf_settime64`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenpfSettime64 {
    pub secs: u64,
    pub nsecs: u32,
    pub mbz: u32,
    pub system_time: u64,
}

/// `struct xenpf_firmware_info`; its union `u` raw, as only `u.kbd_shift_flags` (a byte at
/// its start) is ever written.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenpfFirmwareInfo {
    /// `type`.
    pub ty: u32,
    pub index: u32,
    pub u: [u64; 4],
}

/// `struct xenpf_enter_acpi_sleep`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenpfEnterAcpiSleep {
    pub val_a: u16,
    pub val_b: u16,
    pub sleep_state: u32,
    pub flags: u32,
}

/// `struct xenpf_pcpuinfo` (XENPF_get_cpuinfo).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenpfPcpuinfo {
    pub xen_cpuid: u32,
    pub max_present: u32,
    pub flags: u32,
    pub apic_id: u32,
    pub acpi_id: u32,
}

/// `struct xenpf_pcpu_version` (XENPF_get_cpu_version).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XenpfPcpuVersion {
    pub xen_cpuid: u32,
    pub max_present: u32,
    pub vendor_id: [u8; 12],
    pub family: u32,
    pub model: u32,
    pub stepping: u32,
}
