//! `platform_op` (platform.h): commands and the `xen_platform_op` layout as byte offsets
//! (`U` is where the union starts; the sub-structures' offsets are within it).

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
