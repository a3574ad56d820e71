//! `physdev_op` (physdev.h): sub-ops, flags and the argument structures.

use super::{field_size, size_check, Check};
use pagetable_validator::abi::physdev::{
    self, PhysdevApic, PhysdevDbgpOp, PhysdevEoi, PhysdevGetFreePirq, PhysdevIrq,
    PhysdevIrqStatusQuery, PhysdevManagePci, PhysdevManagePciExt, PhysdevMapPirq, PhysdevPciDevice,
    PhysdevPciDeviceAdd, PhysdevPciMmcfgReserved, PhysdevPirqEoiGmfn, PhysdevSetIobitmap,
    PhysdevSetupGsi, PhysdevUnmapPirq,
};
use std::mem::{offset_of, size_of};

pub fn constant_checks() -> Vec<Check> {
    consts! {
        physdev::PHYSDEVOP_EOI => "PHYSDEVOP_eoi",
        physdev::PHYSDEVOP_PIRQ_EOI_GMFN_V1 => "PHYSDEVOP_pirq_eoi_gmfn_v1",
        physdev::PHYSDEVOP_PIRQ_EOI_GMFN_V2 => "PHYSDEVOP_pirq_eoi_gmfn_v2",
        physdev::PHYSDEVOP_IRQ_STATUS_QUERY => "PHYSDEVOP_irq_status_query",
        physdev::PHYSDEVOP_SET_IOPL => "PHYSDEVOP_set_iopl",
        physdev::PHYSDEVOP_IRQ_UNMASK_NOTIFY => "PHYSDEVOP_IRQ_UNMASK_NOTIFY",
        physdev::PHYSDEVOP_SET_IOBITMAP => "PHYSDEVOP_set_iobitmap",
        physdev::PHYSDEVOP_APIC_READ => "PHYSDEVOP_apic_read",
        physdev::PHYSDEVOP_APIC_WRITE => "PHYSDEVOP_apic_write",
        physdev::PHYSDEVOP_ALLOC_IRQ_VECTOR => "PHYSDEVOP_alloc_irq_vector",
        physdev::PHYSDEVOP_FREE_IRQ_VECTOR => "PHYSDEVOP_free_irq_vector",
        physdev::PHYSDEVOP_MAP_PIRQ => "PHYSDEVOP_map_pirq",
        physdev::PHYSDEVOP_UNMAP_PIRQ => "PHYSDEVOP_unmap_pirq",
        physdev::PHYSDEVOP_MANAGE_PCI_ADD => "PHYSDEVOP_manage_pci_add",
        physdev::PHYSDEVOP_MANAGE_PCI_REMOVE => "PHYSDEVOP_manage_pci_remove",
        physdev::PHYSDEVOP_RESTORE_MSI => "PHYSDEVOP_restore_msi",
        physdev::PHYSDEVOP_MANAGE_PCI_ADD_EXT => "PHYSDEVOP_manage_pci_add_ext",
        physdev::PHYSDEVOP_SETUP_GSI => "PHYSDEVOP_setup_gsi",
        physdev::PHYSDEVOP_GET_FREE_PIRQ => "PHYSDEVOP_get_free_pirq",
        physdev::PHYSDEVOP_PCI_MMCFG_RESERVED => "PHYSDEVOP_pci_mmcfg_reserved",
        physdev::PHYSDEVOP_PCI_DEVICE_ADD => "PHYSDEVOP_pci_device_add",
        physdev::PHYSDEVOP_PCI_DEVICE_REMOVE => "PHYSDEVOP_pci_device_remove",
        physdev::PHYSDEVOP_RESTORE_MSI_EXT => "PHYSDEVOP_restore_msi_ext",
        physdev::PHYSDEVOP_DBGP_OP => "PHYSDEVOP_dbgp_op",
        physdev::PHYSDEVOP_PREPARE_MSIX => "PHYSDEVOP_prepare_msix",
        physdev::PHYSDEVOP_RELEASE_MSIX => "PHYSDEVOP_release_msix",
        physdev::MAP_PIRQ_TYPE_MSI => "MAP_PIRQ_TYPE_MSI",
        physdev::MAP_PIRQ_TYPE_GSI => "MAP_PIRQ_TYPE_GSI",
        physdev::MAP_PIRQ_TYPE_MSI_SEG => "MAP_PIRQ_TYPE_MSI_SEG",
        physdev::MAP_PIRQ_TYPE_MULTI_MSI => "MAP_PIRQ_TYPE_MULTI_MSI",
        physdev::XENIRQSTAT_NEEDS_EOI => "XENIRQSTAT_needs_eoi",
        physdev::XEN_PCI_DEV_VIRTFN => "XEN_PCI_DEV_VIRTFN",
        physdev::XEN_PCI_DEV_PXM => "XEN_PCI_DEV_PXM",
        physdev::XEN_PCI_MMCFG_RESERVED => "XEN_PCI_MMCFG_RESERVED",
        physdev::PCI_DEVICE_ADD_OPTARR => "offsetof(struct physdev_pci_device_add, optarr)",
    }
}

pub fn layout_checks() -> Vec<Check> {
    const EOI: &str = "struct physdev_eoi";
    const GMFN: &str = "struct physdev_pirq_eoi_gmfn";
    const ISQ: &str = "struct physdev_irq_status_query";
    const IOB: &str = "struct physdev_set_iobitmap";
    const APIC: &str = "struct physdev_apic";
    const IRQ: &str = "struct physdev_irq";
    const MAP: &str = "struct physdev_map_pirq";
    const UNMAP: &str = "struct physdev_unmap_pirq";
    const MPCI: &str = "struct physdev_manage_pci";
    const RMSI: &str = "struct physdev_restore_msi";
    const MEXT: &str = "struct physdev_manage_pci_ext";
    const ADD: &str = "struct physdev_pci_device_add";
    const DEV: &str = "struct physdev_pci_device";
    const GSI: &str = "struct physdev_setup_gsi";
    const FREE: &str = "struct physdev_get_free_pirq";
    const MMCFG: &str = "struct physdev_pci_mmcfg_reserved";
    const DBGP: &str = "struct physdev_dbgp_op";
    let mut v = vec![
        size_check("PhysdevEoi", EOI, size_of::<PhysdevEoi>()),
        size_check("PhysdevPirqEoiGmfn", GMFN, size_of::<PhysdevPirqEoiGmfn>()),
        size_check(
            "PhysdevIrqStatusQuery",
            ISQ,
            size_of::<PhysdevIrqStatusQuery>(),
        ),
        size_check("PhysdevSetIobitmap", IOB, size_of::<PhysdevSetIobitmap>()),
        size_check("PhysdevApic", APIC, size_of::<PhysdevApic>()),
        size_check("PhysdevIrq", IRQ, size_of::<PhysdevIrq>()),
        size_check("PhysdevMapPirq", MAP, size_of::<PhysdevMapPirq>()),
        size_check("PhysdevUnmapPirq", UNMAP, size_of::<PhysdevUnmapPirq>()),
        size_check("PhysdevManagePci", MPCI, size_of::<PhysdevManagePci>()),
        size_check(
            "PhysdevManagePci (as physdev_restore_msi)",
            RMSI,
            size_of::<PhysdevManagePci>(),
        ),
        size_check(
            "PhysdevManagePciExt",
            MEXT,
            size_of::<PhysdevManagePciExt>(),
        ),
        size_check("PhysdevPciDeviceAdd", ADD, size_of::<PhysdevPciDeviceAdd>()),
        size_check("PhysdevPciDevice", DEV, size_of::<PhysdevPciDevice>()),
        size_check("PhysdevSetupGsi", GSI, size_of::<PhysdevSetupGsi>()),
        size_check("PhysdevGetFreePirq", FREE, size_of::<PhysdevGetFreePirq>()),
        size_check(
            "PhysdevPciMmcfgReserved",
            MMCFG,
            size_of::<PhysdevPciMmcfgReserved>(),
        ),
        size_check("PhysdevDbgpOp", DBGP, size_of::<PhysdevDbgpOp>()),
    ];
    v.extend(field!(PhysdevEoi, irq, EOI, "irq"));
    v.extend(field!(PhysdevPirqEoiGmfn, gmfn, GMFN, "gmfn"));
    v.extend(field!(PhysdevIrqStatusQuery, irq, ISQ, "irq"));
    v.extend(field!(PhysdevIrqStatusQuery, flags, ISQ, "flags"));
    v.extend(field!(PhysdevSetIobitmap, bitmap, IOB, "bitmap"));
    v.extend(field!(PhysdevSetIobitmap, nr_ports, IOB, "nr_ports"));
    v.extend(pad!(PhysdevSetIobitmap, _pad, IOB, "nr_ports"));
    v.extend(field!(PhysdevApic, apic_physbase, APIC, "apic_physbase"));
    v.extend(field!(PhysdevApic, reg, APIC, "reg"));
    v.extend(field!(PhysdevApic, value, APIC, "value"));
    v.extend(field!(PhysdevIrq, irq, IRQ, "irq"));
    v.extend(field!(PhysdevIrq, vector, IRQ, "vector"));
    v.extend(field!(PhysdevMapPirq, domid, MAP, "domid"));
    v.extend(pad!(PhysdevMapPirq, _pad0, MAP, "domid", "type"));
    v.extend(field!(PhysdevMapPirq, ty, MAP, "type"));
    v.extend(field!(PhysdevMapPirq, index, MAP, "index"));
    v.extend(field!(PhysdevMapPirq, pirq, MAP, "pirq"));
    v.extend(field!(PhysdevMapPirq, bus, MAP, "bus"));
    v.extend(field!(PhysdevMapPirq, devfn, MAP, "devfn"));
    v.extend(field!(PhysdevMapPirq, entry_nr, MAP, "entry_nr"));
    v.extend(pad!(PhysdevMapPirq, _pad1, MAP, "entry_nr", "table_base"));
    v.extend(field!(PhysdevMapPirq, table_base, MAP, "table_base"));
    v.extend(field!(PhysdevUnmapPirq, domid, UNMAP, "domid"));
    v.extend(pad!(PhysdevUnmapPirq, _pad, UNMAP, "domid", "pirq"));
    v.extend(field!(PhysdevUnmapPirq, pirq, UNMAP, "pirq"));
    v.extend(field!(PhysdevManagePci, bus, MPCI, "bus"));
    v.extend(field!(PhysdevManagePci, devfn, MPCI, "devfn"));
    v.extend(field!(PhysdevManagePci, bus, RMSI, "bus").map(as_restore_msi));
    v.extend(field!(PhysdevManagePci, devfn, RMSI, "devfn").map(as_restore_msi));
    v.extend(field!(PhysdevManagePciExt, bus, MEXT, "bus"));
    v.extend(field!(PhysdevManagePciExt, devfn, MEXT, "devfn"));
    v.extend(pad!(PhysdevManagePciExt, _pad0, MEXT, "devfn", "is_extfn"));
    v.extend(field!(PhysdevManagePciExt, is_extfn, MEXT, "is_extfn"));
    v.extend(field!(PhysdevManagePciExt, is_virtfn, MEXT, "is_virtfn"));
    v.extend(field!(PhysdevManagePciExt, physfn_bus, MEXT, "physfn.bus"));
    v.extend(field!(
        PhysdevManagePciExt,
        physfn_devfn,
        MEXT,
        "physfn.devfn"
    ));
    v.extend(pad!(PhysdevManagePciExt, _pad1, MEXT, "physfn"));
    v.extend(field!(PhysdevPciDeviceAdd, seg, ADD, "seg"));
    v.extend(field!(PhysdevPciDeviceAdd, bus, ADD, "bus"));
    v.extend(field!(PhysdevPciDeviceAdd, devfn, ADD, "devfn"));
    v.extend(field!(PhysdevPciDeviceAdd, flags, ADD, "flags"));
    v.extend(field!(PhysdevPciDeviceAdd, physfn_bus, ADD, "physfn.bus"));
    v.extend(field!(
        PhysdevPciDeviceAdd,
        physfn_devfn,
        ADD,
        "physfn.devfn"
    ));
    v.extend(pad!(PhysdevPciDeviceAdd, _pad, ADD, "physfn", "optarr"));
    v.extend(field!(PhysdevPciDevice, seg, DEV, "seg"));
    v.extend(field!(PhysdevPciDevice, bus, DEV, "bus"));
    v.extend(field!(PhysdevPciDevice, devfn, DEV, "devfn"));
    v.extend(field!(PhysdevSetupGsi, gsi, GSI, "gsi"));
    v.extend(field!(PhysdevSetupGsi, triggering, GSI, "triggering"));
    v.extend(field!(PhysdevSetupGsi, polarity, GSI, "polarity"));
    v.extend(pad!(PhysdevSetupGsi, _pad, GSI, "polarity"));
    v.extend(field!(PhysdevGetFreePirq, ty, FREE, "type"));
    v.extend(field!(PhysdevGetFreePirq, pirq, FREE, "pirq"));
    v.extend(field!(PhysdevPciMmcfgReserved, address, MMCFG, "address"));
    v.extend(field!(PhysdevPciMmcfgReserved, segment, MMCFG, "segment"));
    v.extend(field!(
        PhysdevPciMmcfgReserved,
        start_bus,
        MMCFG,
        "start_bus"
    ));
    v.extend(field!(PhysdevPciMmcfgReserved, end_bus, MMCFG, "end_bus"));
    v.extend(field!(PhysdevPciMmcfgReserved, flags, MMCFG, "flags"));
    v.extend(field!(PhysdevDbgpOp, op, DBGP, "op"));
    v.extend(field!(PhysdevDbgpOp, bus, DBGP, "bus"));
    v.extend(field!(PhysdevDbgpOp, pci, DBGP, "u.pci"));
    v
}

/// A row of `struct physdev_restore_msi`, which `PhysdevManagePci` also reads.
fn as_restore_msi(mut c: Check) -> Check {
    c.ours = c.ours.replace('@', " (as physdev_restore_msi)@");
    c
}
