//! physdev_op against Xen 4.17's arch/x86/physdev.c and irq.c on a 1-CPU machine without
//! IO-APIC, ACPI or PCI devices (nr_irqs_gsi 16, nr_irqs 208, dom0 nr_pirqs 208).

use super::*;
use crate::hypercall::testenv::{self, va, BUF};
use std::mem::offset_of;

fn call(hv: &mut Hypervisor, cmd: u32, arg: u64) -> i64 {
    let mut ctx = testenv::ctx();
    hv.hypercall(&mut ctx, hc::PHYSDEV_OP, [u64::from(cmd), arg, 0, 0, 0, 0])
}

/// map_pirq(dom, type, index, pirq) -> (rc, pirq field afterwards).
fn map(hv: &mut Hypervisor, dom: u16, ty: i32, index: i32, pirq: i32) -> (i64, i32) {
    let op = PhysdevMapPirq {
        domid: dom,
        ty,
        index,
        pirq,
        entry_nr: 1,
        ..Default::default()
    };
    hv.t_write(BUF, 0, op.as_slice());
    let rc = call(hv, PHYSDEVOP_MAP_PIRQ, va(BUF, 0));
    (
        rc,
        hv.t_u32(BUF, offset_of!(PhysdevMapPirq, pirq) as u64) as i32,
    )
}

fn unmap(hv: &mut Hypervisor, pirq: i32) -> i64 {
    hv.t_write(BUF, 0x100, &domid::DOMID_SELF.to_le_bytes());
    hv.t_write(BUF, 0x104, &pirq.to_le_bytes());
    call(hv, PHYSDEVOP_UNMAP_PIRQ, va(BUF, 0x100))
}

#[test]
fn set_iopl_is_routed_to_cpu_ops() {
    let mut hv = testenv::hypervisor();
    hv.t_write(BUF, 0, &3u32.to_le_bytes());
    assert_eq!(call(&mut hv, PHYSDEVOP_SET_IOPL, va(BUF, 0)), 0);
    assert_eq!(hv.vcpu.pv.iopl, 3 << 12);
    hv.t_write(BUF, 0, &4u32.to_le_bytes());
    assert_eq!(
        call(&mut hv, PHYSDEVOP_SET_IOPL, va(BUF, 0)),
        -errno::EINVAL
    );
}

#[test]
fn gsi_pirqs_as_the_hardware_domain_maps_them() {
    let mut hv = testenv::hypervisor();
    // Linux's xen_register_pirq(gsi, .., set_pirq): pirq = gsi. The GSI is the IRQ.
    assert_eq!(
        map(&mut hv, domid::DOMID_SELF, MAP_PIRQ_TYPE_GSI, 9, 9),
        (0, 9)
    );
    // Again: allocate_pirq finds the same pirq, map_domain_pirq changes nothing.
    assert_eq!(map(&mut hv, 0, MAP_PIRQ_TYPE_GSI, 9, 9), (0, 9));
    // The same IRQ under another pirq: -EEXIST.
    assert_eq!(
        map(&mut hv, 0, MAP_PIRQ_TYPE_GSI, 9, 20),
        (-errno::EEXIST, 20)
    );
    // pirq -1: get_free_pirq(GSI) finds nothing in 16..nr_irqs_gsi, so the top one (207).
    assert_eq!(map(&mut hv, 0, MAP_PIRQ_TYPE_GSI, 4, -1), (0, 207));
    // GSI 16 does not exist without an IO-APIC; IRQ 0 is not dom0's (irqs 1..15 are).
    assert_eq!(
        map(&mut hv, 0, MAP_PIRQ_TYPE_GSI, 16, 16),
        (-errno::EINVAL, 16)
    );
    assert_eq!(map(&mut hv, 0, MAP_PIRQ_TYPE_GSI, 0, 0), (-errno::EPERM, 0));
    // Another domain: rcu_lock_domain_by_any_id fails, -ESRCH. A bad type: -EINVAL.
    assert_eq!(map(&mut hv, 3, MAP_PIRQ_TYPE_GSI, 9, 9), (-errno::ESRCH, 9));
    assert_eq!(map(&mut hv, 0, 7, 9, 9), (-errno::EINVAL, 9));
    // pirq beyond nr_pirqs: -EINVAL.
    assert_eq!(
        map(&mut hv, 0, MAP_PIRQ_TYPE_GSI, 5, 208),
        (-errno::EINVAL, 208)
    );

    // irq_status_query: XENIRQSTAT_needs_eoi for any pirq below nr_pirqs.
    hv.t_write(BUF, 0x200, &9u32.to_le_bytes());
    hv.t_write(BUF, 0x204, &0xffu32.to_le_bytes());
    assert_eq!(call(&mut hv, PHYSDEVOP_IRQ_STATUS_QUERY, va(BUF, 0x200)), 0);
    assert_eq!(hv.t_u32(BUF, 0x204), XENIRQSTAT_NEEDS_EOI);
    hv.t_write(BUF, 0x200, &208u32.to_le_bytes());
    assert_eq!(
        call(&mut hv, PHYSDEVOP_IRQ_STATUS_QUERY, va(BUF, 0x200)),
        -errno::EINVAL
    );
    // eoi: a mapped pirq 0, an unknown one -EINVAL.
    hv.t_write(BUF, 0x300, &9u32.to_le_bytes());
    assert_eq!(call(&mut hv, PHYSDEVOP_EOI, va(BUF, 0x300)), 0);
    hv.t_write(BUF, 0x300, &10u32.to_le_bytes());
    assert_eq!(call(&mut hv, PHYSDEVOP_EOI, va(BUF, 0x300)), -errno::EINVAL);

    // unmap: mapped ones go, others are "not mapped" -EINVAL.
    assert_eq!(unmap(&mut hv, 9), 0);
    assert_eq!(unmap(&mut hv, 9), -errno::EINVAL);
    assert_eq!(unmap(&mut hv, 300), -errno::EINVAL);
}

#[test]
fn msi_needs_a_device() {
    let mut hv = testenv::hypervisor();
    // index -1: create_irq succeeds, then pci_get_pdev finds nothing: -ENODEV, pirq unchanged.
    assert_eq!(
        map(&mut hv, 0, MAP_PIRQ_TYPE_MSI, -1, -1),
        (-errno::ENODEV, -1)
    );
    assert_eq!(
        map(&mut hv, 0, MAP_PIRQ_TYPE_MSI_SEG, -1, -1),
        (-errno::ENODEV, -1)
    );
    // An IRQ index nobody created: dom0 may not use it, -EPERM; a GSI index: -EINVAL.
    assert_eq!(
        map(&mut hv, 0, MAP_PIRQ_TYPE_MSI, 40, -1),
        (-errno::EPERM, -1)
    );
    assert_eq!(
        map(&mut hv, 0, MAP_PIRQ_TYPE_MSI, 5, -1),
        (-errno::EINVAL, -1)
    );
    assert_eq!(
        map(&mut hv, 0, MAP_PIRQ_TYPE_MULTI_MSI, -1, -1),
        (-errno::ENODEV, -1)
    );
    // MULTI_MSI with a table base: -EINVAL before anything else.
    let table_base = offset_of!(PhysdevMapPirq, table_base) as u64;
    hv.t_write(BUF, table_base, &1u64.to_le_bytes());
    assert_eq!(
        call(&mut hv, PHYSDEVOP_MAP_PIRQ, va(BUF, 0)),
        -errno::EINVAL,
        "the last map left MULTI_MSI in the buffer"
    );
}

#[test]
fn what_needs_hardware_fails_like_xen_without_it() {
    let mut hv = testenv::hypervisor();
    // apic_read/write: no IO-APIC at any physbase, -EINVAL; the value is left alone.
    hv.t_write(BUF, 0, &0xfec0_0000u64.to_le_bytes());
    hv.t_write(BUF, 8, &1u32.to_le_bytes());
    let value = offset_of!(PhysdevApic, value) as u64;
    hv.t_write(BUF, value, &0x1234u32.to_le_bytes());
    assert_eq!(
        call(&mut hv, PHYSDEVOP_APIC_READ, va(BUF, 0)),
        -errno::EINVAL
    );
    assert_eq!(hv.t_u32(BUF, value), 0x1234);
    assert_eq!(
        call(&mut hv, PHYSDEVOP_APIC_WRITE, va(BUF, 0)),
        -errno::EINVAL
    );
    // alloc_irq_vector: the vector is the IRQ.
    hv.t_write(BUF, 0x40, &[9, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(call(&mut hv, PHYSDEVOP_ALLOC_IRQ_VECTOR, va(BUF, 0x40)), 0);
    assert_eq!(hv.t_u32(BUF, 0x44), 9);
    // prepare_msix, pci_mmcfg_reserved: -ENODEV; a bad mmcfg flag -EINVAL.
    assert_eq!(
        call(&mut hv, PHYSDEVOP_PREPARE_MSIX, va(BUF, 0x80)),
        -errno::ENODEV
    );
    let flags = 0x80 + offset_of!(PhysdevPciMmcfgReserved, flags) as u64;
    hv.t_write(BUF, flags, &1u32.to_le_bytes());
    assert_eq!(
        call(&mut hv, PHYSDEVOP_PCI_MMCFG_RESERVED, va(BUF, 0x80)),
        -errno::ENODEV
    );
    hv.t_write(BUF, flags, &2u32.to_le_bytes());
    assert_eq!(
        call(&mut hv, PHYSDEVOP_PCI_MMCFG_RESERVED, va(BUF, 0x80)),
        -errno::EINVAL
    );
    // setup_gsi: legacy GSIs program the ELCR (0), others -EINVAL.
    hv.t_write(BUF, 0xc0, &[4, 0, 0, 0, 1, 1, 0, 0]);
    assert_eq!(call(&mut hv, PHYSDEVOP_SETUP_GSI, va(BUF, 0xc0)), 0);
    hv.t_write(BUF, 0xc0, &16u32.to_le_bytes());
    assert_eq!(
        call(&mut hv, PHYSDEVOP_SETUP_GSI, va(BUF, 0xc0)),
        -errno::EINVAL
    );
    // dbgp_op with no EHCI debug port: 0. free_irq_vector: not in 4.17's switch, -ENOSYS.
    assert_eq!(call(&mut hv, PHYSDEVOP_DBGP_OP, va(BUF, 0xe0)), 0);
    assert_eq!(
        call(&mut hv, PHYSDEVOP_FREE_IRQ_VECTOR, va(BUF, 0xe0)),
        -errno::ENOSYS
    );
    // An unreadable argument: -EFAULT.
    assert_eq!(
        call(&mut hv, PHYSDEVOP_IRQ_STATUS_QUERY, 0x1000),
        -errno::EFAULT
    );
}

#[test]
fn pirq_eoi_gmfn_get_free_pirq_iobitmap_pci() {
    let mut hv = testenv::hypervisor();
    // A pagetable cannot take the writable type (-EINVAL); a data frame can, once (-EBUSY).
    hv.t_write(BUF, 0, &testenv::L4.to_le_bytes());
    assert_eq!(
        call(&mut hv, PHYSDEVOP_PIRQ_EOI_GMFN_V2, va(BUF, 0)),
        -errno::EINVAL
    );
    hv.t_write(BUF, 0, &0x300u64.to_le_bytes());
    assert_eq!(call(&mut hv, PHYSDEVOP_PIRQ_EOI_GMFN_V2, va(BUF, 0)), 0);
    assert_eq!(
        call(&mut hv, PHYSDEVOP_PIRQ_EOI_GMFN_V1, va(BUF, 0)),
        -errno::EBUSY
    );
    assert!(!hv.physdev.auto_unmask);
    // get_free_pirq: the highest free one, then reserved (PIRQ_ALLOCATED).
    hv.t_write(BUF, 0x10, &[1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(call(&mut hv, PHYSDEVOP_GET_FREE_PIRQ, va(BUF, 0x10)), 0);
    assert_eq!(hv.t_u32(BUF, 0x14), 207);
    assert_eq!(call(&mut hv, PHYSDEVOP_GET_FREE_PIRQ, va(BUF, 0x10)), 0);
    assert_eq!(hv.t_u32(BUF, 0x14), 206);
    // set_iobitmap: a bitmap in Xen's range or more than 65536 ports is -EINVAL.
    hv.t_write(BUF, 0x20, &va(0x310, 0).to_le_bytes());
    hv.t_write(BUF, 0x28, &1024u32.to_le_bytes());
    assert_eq!(call(&mut hv, PHYSDEVOP_SET_IOBITMAP, va(BUF, 0x20)), 0);
    assert_eq!(
        (hv.physdev.iobmp, hv.physdev.iobmp_limit),
        (va(0x310, 0), 1024)
    );
    hv.t_write(BUF, 0x28, &65537u32.to_le_bytes());
    assert_eq!(
        call(&mut hv, PHYSDEVOP_SET_IOBITMAP, va(BUF, 0x20)),
        -errno::EINVAL
    );
    // PCI: removing an unknown device is -ENODEV; an added one can be removed once.
    hv.t_write(BUF, 0x40, &[0, 0, 3, 0x10]);
    assert_eq!(
        call(&mut hv, PHYSDEVOP_PCI_DEVICE_REMOVE, va(BUF, 0x40)),
        -errno::ENODEV
    );
    hv.t_write(BUF, 0x50, &[0, 0, 3, 0x10, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(call(&mut hv, PHYSDEVOP_PCI_DEVICE_ADD, va(BUF, 0x50)), 0);
    assert_eq!(call(&mut hv, PHYSDEVOP_RESTORE_MSI_EXT, va(BUF, 0x40)), 0);
    assert_eq!(call(&mut hv, PHYSDEVOP_PCI_DEVICE_REMOVE, va(BUF, 0x40)), 0);
    assert_eq!(
        call(&mut hv, PHYSDEVOP_RESTORE_MSI_EXT, va(BUF, 0x40)),
        -errno::ENODEV
    );
    // manage_pci_add_ext with is_extfn > 1: -EINVAL.
    hv.t_write(BUF, 0x60, &[0, 8, 0, 0, 2, 0, 0, 0]);
    assert_eq!(
        call(&mut hv, PHYSDEVOP_MANAGE_PCI_ADD_EXT, va(BUF, 0x60)),
        -errno::EINVAL
    );
    // The registry is bounded: past MAX_PCI_DEVICES, -ENOMEM.
    for i in 0..MAX_PCI_DEVICES {
        let d = [(i >> 8) as u8, (i & 0xff) as u8];
        hv.t_write(BUF, 0x70, &d);
        assert_eq!(call(&mut hv, PHYSDEVOP_MANAGE_PCI_ADD, va(BUF, 0x70)), 0);
    }
    hv.t_write(BUF, 0x70, &[0xff, 0xff]);
    assert_eq!(
        call(&mut hv, PHYSDEVOP_MANAGE_PCI_ADD, va(BUF, 0x70)),
        -errno::ENOMEM
    );
}
