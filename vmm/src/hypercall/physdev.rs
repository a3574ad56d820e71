//! `physdev_op` (hypercall 33) as Xen 4.17's `arch/x86/physdev.c` answers our dom0 on the
//! machine the VMM pretends to be: one CPU, no ACPI or MP tables (so no IO-APIC: Xen falls back
//! to the 16 legacy ISA IRQs, `nr_irqs_gsi` = 16), no PCI devices, no IOMMU, no EHCI debug port.
//! With one CPU, `nr_irqs` = max(NR_DYNAMIC_VECTORS, 8 * 16) = 208 and dom0's `nr_pirqs` =
//! `arch_hwdom_irqs` = min(16 + 1 * 208, 208) = 208. dom0 may use IRQs 1..15
//! (`dom0_setup_permissions`: `irqs_permit_access(d, 1, nr_irqs_gsi - 1)`).
//!
//! Served: the PIRQ table (`map_pirq` of GSIs, `unmap_pirq`, `get_free_pirq`, `eoi`,
//! `irq_status_query`), `pirq_eoi_gmfn_v1/v2`, `alloc_irq_vector` (Xen's dummy), `set_iopl`
//! (pv/cpu_ops.rs), `set_iobitmap` (recorded), `setup_gsi` (the ELCR path Xen takes without an
//! IO-APIC), and the PCI registry (`pci_device_add`, `manage_pci_add[_ext]` record a device as
//! Xen's `pci_add_device` does — Xen trusts dom0 — and the remove calls find it again).
//! Everything that needs real hardware fails as Xen fails without it: `apic_read`/`apic_write`
//! -EINVAL (no IO-APIC at that address), MSI maps -ENODEV (no such PCI device), `prepare_msix`
//! -ENODEV, `pci_mmcfg_reserved` -ENODEV (no MCFG), `dbgp_op` 0 (no debug port).

use super::{err, handle_okay, Ctx, Hypervisor};
use pagetable_validator::abi::physdev::*;
use pagetable_validator::abi::{domid, errno, hypercall as hc};
use std::collections::BTreeSet;
use vm_memory::ByteValued;

/// `nr_irqs_gsi`: the legacy ISA IRQs, no IO-APIC.
pub const NR_IRQS_GSI: i32 = 16;
/// `nr_irqs` with one CPU (see the module doc).
pub const NR_IRQS: i32 = 208;
/// dom0's `nr_pirqs`.
pub const NR_PIRQS: i32 = 208;
/// `PIRQ_ALLOCATED` (asm/irq.h): `get_free_pirq` reserved it, nothing mapped yet.
const PIRQ_ALLOCATED: i32 = -1;
/// `MAX_MSI_IRQS`.
const MAX_MSI_IRQS: i32 = 32;
/// `IOBMP_BYTES`: 65536 ports.
const IOBMP_BYTES: u64 = 8192;
/// PCI devices dom0 may register; beyond this `pci_add_device`'s allocation fails (-ENOMEM).
pub const MAX_PCI_DEVICES: usize = 256;

/// The domain's physical-device state (Xen's `d->pirq_tree`, `arch.pirq_eoi_map*`,
/// `pv.iobmp*`, the PCI device list).
#[derive(Debug, Clone)]
pub struct Physdev {
    /// `pirq_info(d, p)->arch.irq` for each pirq: 0 = free, [`PIRQ_ALLOCATED`], or the IRQ.
    pub pirq_irq: Vec<i32>,
    /// IRQs created for MSI (`create_irq`), which dom0 is then permitted to use.
    msi_irqs_created: u32,
    /// `pirq_eoi_map_mfn` (0 = none) and `auto_unmask` (set by the v1 call).
    pub pirq_eoi_gmfn: Option<u64>,
    pub auto_unmask: bool,
    /// `set_iobitmap`: the guest VA of the I/O bitmap and its limit in ports.
    pub iobmp: u64,
    pub iobmp_limit: u32,
    /// PCI devices registered by dom0: (segment, bus, devfn).
    pub pci: BTreeSet<(u16, u8, u8)>,
}

impl Default for Physdev {
    fn default() -> Self {
        Physdev {
            pirq_irq: vec![0; NR_PIRQS as usize],
            msi_irqs_created: 0,
            pirq_eoi_gmfn: None,
            auto_unmask: false,
            iobmp: 0,
            iobmp_limit: 0,
            pci: BTreeSet::new(),
        }
    }
}

impl Physdev {
    /// `domain_pirq_to_irq`.
    fn pirq_to_irq(&self, pirq: i32) -> i32 {
        usize::try_from(pirq)
            .ok()
            .and_then(|p| self.pirq_irq.get(p))
            .copied()
            .unwrap_or(0)
    }
    /// `domain_irq_to_pirq` (0 = none).
    fn irq_to_pirq(&self, irq: i32) -> i32 {
        if irq <= 0 {
            return 0;
        }
        self.pirq_irq
            .iter()
            .position(|&i| i == irq)
            .map_or(0, |p| p as i32)
    }
    fn is_free(&self, pirq: i32) -> bool {
        self.pirq_to_irq(pirq) == 0
    }
    /// `get_free_pirq(d, type)`.
    fn get_free_pirq(&self, ty: i32) -> i32 {
        if ty == MAP_PIRQ_TYPE_GSI {
            // 16..nr_irqs_gsi is empty on this machine.
            if let Some(p) = (16..NR_IRQS_GSI).find(|&p| self.is_free(p)) {
                return p;
            }
        }
        (NR_IRQS_GSI..NR_PIRQS)
            .rev()
            .find(|&p| self.is_free(p))
            .unwrap_or(err(errno::ENOSPC) as i32)
    }
    /// `irq_access_permitted(dom0, irq)`.
    fn irq_permitted(&self, irq: i32) -> bool {
        (1..NR_IRQS_GSI).contains(&irq)
    }
    /// `allocate_pirq` for a GSI or a single MSI.
    fn allocate_pirq(&self, pirq: i32, irq: i32, ty: i32) -> i32 {
        let current = self.irq_to_pirq(irq);
        if pirq < 0 {
            if current != 0 {
                current
            } else {
                self.get_free_pirq(ty)
            }
        } else if current != 0 && pirq != current {
            err(errno::EEXIST) as i32
        } else {
            pirq
        }
    }
}

impl Hypervisor {
    /// `physdev_op(cmd, arg)`.
    pub(super) fn physdev_op(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> i64 {
        let cmd = cmd as u32;
        match cmd {
            PHYSDEVOP_SET_IOPL => self.physdev_set_iopl(ctx, arg),
            PHYSDEVOP_EOI => self.pd_eoi(ctx, arg),
            PHYSDEVOP_PIRQ_EOI_GMFN_V1 | PHYSDEVOP_PIRQ_EOI_GMFN_V2 => {
                self.pd_pirq_eoi_gmfn(ctx, arg, cmd == PHYSDEVOP_PIRQ_EOI_GMFN_V1)
            }
            // pirq_guest_unmask: nothing is bound.
            PHYSDEVOP_IRQ_UNMASK_NOTIFY => 0,
            PHYSDEVOP_IRQ_STATUS_QUERY => self.pd_irq_status_query(ctx, arg),
            PHYSDEVOP_MAP_PIRQ => self.pd_map_pirq(ctx, arg),
            PHYSDEVOP_UNMAP_PIRQ => self.pd_unmap_pirq(ctx, arg),
            PHYSDEVOP_APIC_READ => {
                // ioapic_guest_read: ioapic_physbase_to_id finds no IO-APIC: -EINVAL, and
                // the structure is copied back unchanged.
                let op: PhysdevApic = match self.pd_read(ctx, arg, "apic_read") {
                    Ok(op) => op,
                    Err(rc) => return rc,
                };
                match self.pd_write(ctx, arg, &op, "apic_read") {
                    Ok(()) => err(errno::EINVAL),
                    Err(rc) => rc,
                }
            }
            PHYSDEVOP_APIC_WRITE => match self.pd_read::<PhysdevApic>(ctx, arg, "apic_write") {
                Ok(_) => err(errno::EINVAL),
                Err(rc) => rc,
            },
            PHYSDEVOP_ALLOC_IRQ_VECTOR => {
                // Xen's dummy: the vector is the IRQ.
                let mut op: PhysdevIrq = match self.pd_read(ctx, arg, "alloc_irq_vector") {
                    Ok(op) => op,
                    Err(rc) => return rc,
                };
                op.vector = op.irq;
                match self.pd_write(ctx, arg, &op, "alloc_irq_vector") {
                    Ok(()) => 0,
                    Err(rc) => rc,
                }
            }
            PHYSDEVOP_SET_IOBITMAP => self.pd_set_iobitmap(ctx, arg),
            PHYSDEVOP_MANAGE_PCI_ADD => {
                match self.pd_read::<PhysdevManagePci>(ctx, arg, "manage_pci_add") {
                    Ok(op) => self.pd_pci_add(0, op.bus, op.devfn, None),
                    Err(rc) => rc,
                }
            }
            PHYSDEVOP_MANAGE_PCI_REMOVE => {
                match self.pd_read::<PhysdevManagePci>(ctx, arg, "manage_pci_remove") {
                    Ok(op) => self.pd_pci_remove(0, op.bus, op.devfn),
                    Err(rc) => rc,
                }
            }
            PHYSDEVOP_MANAGE_PCI_ADD_EXT => {
                let op: PhysdevManagePciExt = match self.pd_read(ctx, arg, "manage_pci_add_ext") {
                    Ok(op) => op,
                    Err(rc) => return rc,
                };
                if op.is_extfn > 1 || op.is_virtfn > 1 {
                    return err(errno::EINVAL);
                }
                let physfn = (op.is_virtfn == 1).then_some((op.physfn_bus, op.physfn_devfn));
                self.pd_pci_add(0, op.bus, op.devfn, physfn)
            }
            PHYSDEVOP_PCI_DEVICE_ADD => {
                let op: PhysdevPciDeviceAdd = match self.pd_read(ctx, arg, "pci_device_add") {
                    Ok(op) => op,
                    Err(rc) => return rc,
                };
                if op.flags & XEN_PCI_DEV_PXM != 0 {
                    // optarr[0], the proximity domain (one node here: NUMA_NO_NODE or 0).
                    let at = arg.wrapping_add(PCI_DEVICE_ADD_OPTARR);
                    if let Err(rc) = self.pd_read::<u32>(ctx, at, "pci_device_add") {
                        return rc;
                    }
                }
                let physfn = (op.flags & XEN_PCI_DEV_VIRTFN != 0)
                    .then_some((op.physfn_bus, op.physfn_devfn));
                self.pd_pci_add(op.seg, op.bus, op.devfn, physfn)
            }
            PHYSDEVOP_PCI_DEVICE_REMOVE => {
                match self.pd_read::<PhysdevPciDevice>(ctx, arg, "pci_device_remove") {
                    Ok(op) => self.pd_pci_remove(op.seg, op.bus, op.devfn),
                    Err(rc) => rc,
                }
            }
            PHYSDEVOP_RESTORE_MSI | PHYSDEVOP_RESTORE_MSI_EXT => {
                let dev = if cmd == PHYSDEVOP_RESTORE_MSI {
                    // struct physdev_restore_msi: the layout of physdev_manage_pci.
                    self.pd_read::<PhysdevManagePci>(ctx, arg, "restore_msi")
                        .map(|op| (0, op.bus, op.devfn))
                } else {
                    self.pd_read::<PhysdevPciDevice>(ctx, arg, "restore_msi_ext")
                        .map(|op| (op.seg, op.bus, op.devfn))
                };
                match dev {
                    // pci_restore_msi_state of a device without MSI set up: nothing to do.
                    Ok(d) if self.physdev.pci.contains(&d) => 0,
                    Ok(_) => err(errno::ENODEV),
                    Err(rc) => rc,
                }
            }
            PHYSDEVOP_PREPARE_MSIX | PHYSDEVOP_RELEASE_MSIX => {
                // pci_prepare_msix: no MSI-X capability in an absent device's config space.
                match self.pd_read::<PhysdevPciDevice>(ctx, arg, "prepare_msix") {
                    Ok(_) => err(errno::ENODEV),
                    Err(rc) => rc,
                }
            }
            PHYSDEVOP_PCI_MMCFG_RESERVED => {
                let op: PhysdevPciMmcfgReserved = match self.pd_read(ctx, arg, "pci_mmcfg_reserved")
                {
                    Ok(op) => op,
                    Err(rc) => return rc,
                };
                if op.flags & !XEN_PCI_MMCFG_RESERVED != 0 {
                    err(errno::EINVAL)
                } else {
                    err(errno::ENODEV) // no MCFG region of that segment and bus range
                }
            }
            PHYSDEVOP_SETUP_GSI => {
                let op: PhysdevSetupGsi = match self.pd_read(ctx, arg, "setup_gsi") {
                    Ok(op) => op,
                    Err(rc) => return rc,
                };
                if !(0..NR_IRQS_GSI).contains(&op.gsi) {
                    return err(errno::EINVAL);
                }
                // mp_register_gsi without IO-APICs: programs the ELCR for a legacy IRQ (GSI 0
                // is "the ACPI SCI", acpi_fadt.sci_int = 0 with no FADT: returns 0 too).
                0
            }
            PHYSDEVOP_GET_FREE_PIRQ => {
                let mut op: PhysdevGetFreePirq = match self.pd_read(ctx, arg, "get_free_pirq") {
                    Ok(op) => op,
                    Err(rc) => return rc,
                };
                let p = self.physdev.get_free_pirq(op.ty);
                if p < 0 {
                    return i64::from(p);
                }
                self.physdev.pirq_irq[p as usize] = PIRQ_ALLOCATED;
                op.pirq = p as u32;
                match self.pd_write(ctx, arg, &op, "get_free_pirq") {
                    Ok(()) => 0,
                    Err(rc) => rc,
                }
            }
            PHYSDEVOP_DBGP_OP => match self.pd_read::<PhysdevDbgpOp>(ctx, arg, "dbgp_op") {
                Ok(_) => 0, // dbgp_op: no EHCI debug port
                Err(rc) => rc,
            },
            // PHYSDEVOP_free_irq_vector and unknown commands reach pci_physdev_op: -ENOSYS.
            _ => self.unsupported(ctx, hc::PHYSDEV_OP, Some(u64::from(cmd))),
        }
    }

    fn pd_read<T: ByteValued + Default>(
        &mut self,
        ctx: &Ctx,
        va: u64,
        what: &str,
    ) -> Result<T, i64> {
        self.read_arg(ctx, va, "physdev_op", what)
    }

    fn pd_write<T: ByteValued>(
        &mut self,
        ctx: &Ctx,
        va: u64,
        op: &T,
        what: &str,
    ) -> Result<(), i64> {
        self.write_arg(ctx, va, op.as_slice(), "physdev_op", what)
    }

    /// `PHYSDEVOP_eoi`: a pirq without info is -EINVAL; a known one is EOI'd (nothing is
    /// bound, so nothing happens).
    fn pd_eoi(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let irq = match self.pd_read::<PhysdevEoi>(ctx, arg, "eoi") {
            Ok(op) => op.irq,
            Err(rc) => return rc,
        };
        if irq >= NR_PIRQS as u32 || self.physdev.is_free(irq as i32) {
            return err(errno::EINVAL);
        }
        0
    }

    /// `PHYSDEVOP_pirq_eoi_gmfn_v1/v2`. Xen keeps a writable type reference on the page for
    /// as long as the domain lives; the validator has no external type references, so the
    /// page is only checked here (see the report). Xen writes it only for bound pirqs, of
    /// which there are none.
    fn pd_pirq_eoi_gmfn(&mut self, ctx: &Ctx, arg: u64, v1: bool) -> i64 {
        let gmfn = match self.pd_read::<PhysdevPirqEoiGmfn>(ctx, arg, "pirq_eoi_gmfn") {
            Ok(op) => op.gmfn,
            Err(rc) => return rc,
        };
        if !self.gnt_our_frame(gmfn) || !self.gnt_writable(gmfn) {
            return err(errno::EINVAL);
        }
        if self.physdev.pirq_eoi_gmfn.is_some() {
            return err(errno::EBUSY);
        }
        self.physdev.pirq_eoi_gmfn = Some(gmfn);
        if v1 {
            self.physdev.auto_unmask = true;
        }
        0
    }

    /// `PHYSDEVOP_irq_status_query`: any pirq below nr_pirqs needs an EOI
    /// (XENIRQSTAT_needs_eoi), none is shared.
    fn pd_irq_status_query(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let mut op: PhysdevIrqStatusQuery = match self.pd_read(ctx, arg, "irq_status_query") {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        if !(0..NR_PIRQS).contains(&(op.irq as i32)) {
            return err(errno::EINVAL);
        }
        op.flags = XENIRQSTAT_NEEDS_EOI;
        match self.pd_write(ctx, arg, &op, "irq_status_query") {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }

    /// `PHYSDEVOP_map_pirq`: the structure is copied back whole, whatever the result.
    fn pd_map_pirq(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let mut op: PhysdevMapPirq = match self.pd_read(ctx, arg, "map_pirq") {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        let (dom, mut ty, index, pirq_in, entry_nr) =
            (op.domid, op.ty, op.index, op.pirq, op.entry_nr);
        match ty {
            MAP_PIRQ_TYPE_MSI_SEG => ty = MAP_PIRQ_TYPE_MSI,
            MAP_PIRQ_TYPE_MULTI_MSI if op.table_base != 0 => {
                return err(errno::EINVAL);
            }
            _ => {}
        }
        let (rc, pirq) = if dom != domid::DOMID_SELF && dom != 0 {
            (err(errno::ESRCH), None)
        } else {
            match ty {
                MAP_PIRQ_TYPE_GSI => self.pd_map_gsi(index, pirq_in),
                MAP_PIRQ_TYPE_MSI | MAP_PIRQ_TYPE_MULTI_MSI => {
                    self.pd_map_msi(ty, index, pirq_in, entry_nr)
                }
                _ => (err(errno::EINVAL), None),
            }
        };
        if let Some(p) = pirq {
            op.pirq = p;
        }
        match self.pd_write(ctx, arg, &op, "map_pirq") {
            Ok(()) => rc,
            Err(rc) => rc,
        }
    }

    /// `allocate_and_map_gsi_pirq` + `map_domain_pirq` for a GSI: (rc, pirq to report).
    fn pd_map_gsi(&mut self, index: i32, pirq_in: i32) -> (i64, Option<i32>) {
        let pd = &mut self.physdev;
        if !(0..NR_IRQS_GSI).contains(&index) {
            return (err(errno::EINVAL), None); // "map invalid irq"
        }
        let irq = match pd.pirq_to_irq(index) {
            i if i > 0 => i,
            _ => index, // the hardware domain's GSI is its IRQ
        };
        let pirq = pd.allocate_pirq(pirq_in, irq, MAP_PIRQ_TYPE_GSI);
        if pirq < 0 {
            return (i64::from(pirq), None);
        }
        if !pd.irq_permitted(irq) {
            return (err(errno::EPERM), None);
        }
        if pirq >= NR_PIRQS || irq <= 0 || irq >= NR_IRQS {
            return (err(errno::EINVAL), None);
        }
        let old_irq = pd.pirq_to_irq(pirq);
        let old_pirq = pd.irq_to_pirq(irq);
        if (old_irq > 0 && old_irq != irq) || (old_pirq != 0 && old_pirq != pirq) {
            // "pirq or irq already mapped": Xen returns 0 and maps nothing.
            return (0, Some(pirq));
        }
        pd.pirq_irq[pirq as usize] = irq;
        (0, Some(pirq))
    }

    /// `allocate_and_map_msi_pirq` + `map_domain_pirq` with no PCI device behind it:
    /// (rc, pirq to report).
    fn pd_map_msi(
        &mut self,
        ty: i32,
        index: i32,
        pirq_in: i32,
        entry_nr: i32,
    ) -> (i64, Option<i32>) {
        let pd = &mut self.physdev;
        // MULTI_MSI and MSI with index -1 create an IRQ (create_irq, granted to dom0; given
        // back by destroy_irq when the map fails); otherwise the index is the IRQ.
        let created = ty == MAP_PIRQ_TYPE_MULTI_MSI || index == -1;
        let irq = if created {
            if pd.msi_irqs_created >= (NR_IRQS - NR_IRQS_GSI) as u32 {
                return (err(errno::EINVAL), None); // "can't create irq for msi"
            }
            // An IRQ no pirq maps (create_irq hands out unused ones).
            NR_IRQS_GSI + pd.msi_irqs_created as i32
        } else if (NR_IRQS_GSI..NR_IRQS).contains(&index) {
            index
        } else {
            return (err(errno::EINVAL), None);
        };
        // allocate_pirq.
        let current = if created { 0 } else { pd.irq_to_pirq(irq) };
        let pirq = if pirq_in < 0 {
            if current != 0 {
                current
            } else {
                if ty == MAP_PIRQ_TYPE_MULTI_MSI {
                    if entry_nr <= 0 || entry_nr > MAX_MSI_IRQS {
                        return (err(errno::EDOM), None);
                    }
                    if entry_nr != 1 {
                        return (err(errno::EOPNOTSUPP), None); // no interrupt remapping
                    }
                }
                pd.get_free_pirq(ty)
            }
        } else if current != 0 && pirq_in != current {
            return (err(errno::EEXIST), None);
        } else {
            pirq_in
        };
        if pirq < 0 {
            return (i64::from(pirq), None);
        }
        // map_domain_pirq.
        if !created && !pd.irq_permitted(irq) {
            return (err(errno::EPERM), None);
        }
        if pirq >= NR_PIRQS {
            return (err(errno::EINVAL), None);
        }
        let old_irq = pd.pirq_to_irq(pirq);
        if old_irq > 0 && old_irq != irq {
            // "pirq or irq already mapped": 0, nothing mapped (the created IRQ stays).
            pd.msi_irqs_created += 1;
            return (0, Some(pirq));
        }
        // pci_get_pdev finds no device (or one dom0 registered, whose absent config space
        // has no MSI capability): -ENODEV.
        (err(errno::ENODEV), None)
    }

    /// `PHYSDEVOP_unmap_pirq`.
    fn pd_unmap_pirq(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let op: PhysdevUnmapPirq = match self.pd_read(ctx, arg, "unmap_pirq") {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        if op.domid != domid::DOMID_SELF && op.domid != 0 {
            return err(errno::ESRCH);
        }
        let pirq = op.pirq;
        if !(0..NR_PIRQS).contains(&pirq) || self.physdev.pirq_to_irq(pirq) <= 0 {
            return err(errno::EINVAL); // "pirq not mapped"
        }
        self.physdev.pirq_irq[pirq as usize] = 0;
        0
    }

    /// `PHYSDEVOP_set_iobitmap`: recorded; the I/O-permission check of emulated port I/O is
    /// Xen's `guest_io_okay` (pv/emul_priv_op.rs).
    fn pd_set_iobitmap(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let PhysdevSetIobitmap {
            bitmap, nr_ports, ..
        } = match self.pd_read(ctx, arg, "set_iobitmap") {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        // guest_handle_okay(bitmap, IOBMP_BYTES): only the start is checked.
        let _ = IOBMP_BYTES;
        if !handle_okay(bitmap) || nr_ports > 65536 {
            return err(errno::EINVAL);
        }
        self.physdev.iobmp = bitmap;
        self.physdev.iobmp_limit = nr_ports;
        0
    }

    /// `pci_add_device`: Xen records the device without checking that it exists (a virtual
    /// function's physical function is added first if unknown).
    fn pd_pci_add(&mut self, seg: u16, bus: u8, devfn: u8, physfn: Option<(u8, u8)>) -> i64 {
        if let Some((pbus, pdevfn)) = physfn {
            if !self.physdev.pci.contains(&(seg, pbus, pdevfn)) {
                let _ = self.pd_pci_add(seg, pbus, pdevfn, None);
            }
        }
        let pci = &mut self.physdev.pci;
        if !pci.contains(&(seg, bus, devfn)) {
            if pci.len() >= MAX_PCI_DEVICES {
                return err(errno::ENOMEM);
            }
            pci.insert((seg, bus, devfn));
        }
        0
    }

    /// `pci_remove_device`.
    fn pd_pci_remove(&mut self, seg: u16, bus: u8, devfn: u8) -> i64 {
        if self.physdev.pci.remove(&(seg, bus, devfn)) {
            0
        } else {
            err(errno::ENODEV)
        }
    }
}

#[cfg(test)]
mod tests;
