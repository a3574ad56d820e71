//! `physdev_op` (physdev.h): sub-ops, flags and the argument structures.

pub const PHYSDEVOP_EOI: u32 = 12;
pub const PHYSDEVOP_PIRQ_EOI_GMFN_V1: u32 = 17;
pub const PHYSDEVOP_PIRQ_EOI_GMFN_V2: u32 = 28;
pub const PHYSDEVOP_IRQ_STATUS_QUERY: u32 = 5;
pub const PHYSDEVOP_SET_IOPL: u32 = 6;
/// Legacy, only visible to old interface versions.
pub const PHYSDEVOP_IRQ_UNMASK_NOTIFY: u32 = 4;
pub const PHYSDEVOP_SET_IOBITMAP: u32 = 7;
pub const PHYSDEVOP_APIC_READ: u32 = 8;
pub const PHYSDEVOP_APIC_WRITE: u32 = 9;
pub const PHYSDEVOP_ALLOC_IRQ_VECTOR: u32 = 10;
pub const PHYSDEVOP_FREE_IRQ_VECTOR: u32 = 11;
pub const PHYSDEVOP_MAP_PIRQ: u32 = 13;
pub const PHYSDEVOP_UNMAP_PIRQ: u32 = 14;
pub const PHYSDEVOP_MANAGE_PCI_ADD: u32 = 15;
pub const PHYSDEVOP_MANAGE_PCI_REMOVE: u32 = 16;
pub const PHYSDEVOP_RESTORE_MSI: u32 = 19;
pub const PHYSDEVOP_MANAGE_PCI_ADD_EXT: u32 = 20;
pub const PHYSDEVOP_SETUP_GSI: u32 = 21;
pub const PHYSDEVOP_GET_FREE_PIRQ: u32 = 23;
pub const PHYSDEVOP_PCI_MMCFG_RESERVED: u32 = 24;
pub const PHYSDEVOP_PCI_DEVICE_ADD: u32 = 25;
pub const PHYSDEVOP_PCI_DEVICE_REMOVE: u32 = 26;
pub const PHYSDEVOP_RESTORE_MSI_EXT: u32 = 27;
pub const PHYSDEVOP_DBGP_OP: u32 = 29;
pub const PHYSDEVOP_PREPARE_MSIX: u32 = 30;
pub const PHYSDEVOP_RELEASE_MSIX: u32 = 31;

pub const MAP_PIRQ_TYPE_MSI: i32 = 0;
pub const MAP_PIRQ_TYPE_GSI: i32 = 1;
pub const MAP_PIRQ_TYPE_MSI_SEG: i32 = 3;
pub const MAP_PIRQ_TYPE_MULTI_MSI: i32 = 4;
pub const XENIRQSTAT_NEEDS_EOI: u32 = 1;
pub const XEN_PCI_DEV_VIRTFN: u32 = 2;
pub const XEN_PCI_DEV_PXM: u32 = 4;
pub const XEN_PCI_MMCFG_RESERVED: u32 = 1;

/// Where `struct physdev_pci_device_add`'s `optarr[]` starts (a flexible array after the
/// struct: `optarr[0]` is the proximity domain when `XEN_PCI_DEV_PXM` is set).
pub const PCI_DEVICE_ADD_OPTARR: u64 = 12;

/// `struct physdev_eoi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevEoi {
    pub irq: u32,
}

/// `struct physdev_pirq_eoi_gmfn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevPirqEoiGmfn {
    pub gmfn: u64,
}

/// `struct physdev_irq_status_query`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevIrqStatusQuery {
    pub irq: u32,
    pub flags: u32,
}

/// `struct physdev_set_iobitmap`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevSetIobitmap {
    pub bitmap: u64,
    pub nr_ports: u32,
    pub _pad: u32,
}

/// `struct physdev_apic` (apic_read, apic_write).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevApic {
    pub apic_physbase: u64,
    pub reg: u32,
    pub value: u32,
}

/// `struct physdev_irq` (alloc_irq_vector, free_irq_vector).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevIrq {
    pub irq: u32,
    pub vector: u32,
}

/// `struct physdev_map_pirq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevMapPirq {
    pub domid: u16,
    pub _pad0: u16,
    /// `type`.
    pub ty: i32,
    pub index: i32,
    pub pirq: i32,
    pub bus: i32,
    pub devfn: i32,
    pub entry_nr: i32,
    pub _pad1: u32,
    pub table_base: u64,
}

/// `struct physdev_unmap_pirq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevUnmapPirq {
    pub domid: u16,
    pub _pad: u16,
    pub pirq: i32,
}

/// `struct physdev_manage_pci` (manage_pci_add/remove; `struct physdev_restore_msi` has
/// the same layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevManagePci {
    pub bus: u8,
    pub devfn: u8,
}

/// `struct physdev_manage_pci_ext`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevManagePciExt {
    pub bus: u8,
    pub devfn: u8,
    pub _pad0: u16,
    pub is_extfn: u32,
    pub is_virtfn: u32,
    /// `physfn.bus`, `physfn.devfn`.
    pub physfn_bus: u8,
    pub physfn_devfn: u8,
    pub _pad1: u16,
}

/// `struct physdev_pci_device_add` without its `optarr[]` (see [`PCI_DEVICE_ADD_OPTARR`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevPciDeviceAdd {
    pub seg: u16,
    pub bus: u8,
    pub devfn: u8,
    pub flags: u32,
    /// `physfn.bus`, `physfn.devfn`.
    pub physfn_bus: u8,
    pub physfn_devfn: u8,
    pub _pad: u16,
}

/// `struct physdev_pci_device` (pci_device_remove, restore_msi_ext, prepare/release_msix).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevPciDevice {
    pub seg: u16,
    pub bus: u8,
    pub devfn: u8,
}

/// `struct physdev_setup_gsi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevSetupGsi {
    pub gsi: i32,
    pub triggering: u8,
    pub polarity: u8,
    pub _pad: u16,
}

/// `struct physdev_get_free_pirq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevGetFreePirq {
    /// `type`.
    pub ty: i32,
    pub pirq: u32,
}

/// `struct physdev_pci_mmcfg_reserved`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevPciMmcfgReserved {
    pub address: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
    pub flags: u32,
}

/// `struct physdev_dbgp_op` (its union `u` has the one member `pci`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysdevDbgpOp {
    pub op: u8,
    pub bus: u8,
    /// `u.pci`.
    pub pci: PhysdevPciDevice,
}
