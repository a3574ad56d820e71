//! Writing the Xen area into guest memory, once before the vCPU first runs: its page tables
//! (M2P, per-domain area, direct map), Xen's GDT page, the IDT of gates to the vector stubs,
//! the TSS with its I/O bitmap, and the stubs' code.

use super::stubs::LayoutStubs;
use super::{
    gdt_zero_flags, port, XenAreaError, XenLayout, HYP_RO_USER, HYP_RW, PD_ENTRY, PD_IDT, PD_PAGES,
    PD_TSS, PD_VECTORS, PD_ZERO, TSS_LIMIT, TSS_SIZE,
};
use crate::memory::GuestRam;
use pagetable_validator::abi::x86 as xen;
use pagetable_validator::pte;

/// Writes the Xen area into `ram`: page tables, Xen's GDT page, IDT, TSS, stubs, the M2P.
/// `m2p[mfn]` is the guest's pfn of each RAM frame.
pub fn build(l: &XenLayout, ram: &GuestRam, m2p: &[u64]) -> Result<(), XenAreaError> {
    let put = |frame: u64, slot: u64, v: u64| {
        let ok = ram.write_u64_phys((frame << 12) + slot * 8, v);
        debug_assert!(ok, "the Xen area lies inside the guest memory map");
    };
    let nx = pte::_PAGE_NX;
    // M2P: L3[0] -> L2 -> L1s -> data, read-only and user-readable (the guest kernel reads it
    // at CPL 3); intermediate levels user too, as the permission is the AND of all levels.
    put(l.m2p_l3(), 0, pte::mk_pte(l.m2p_l2(), HYP_RO_USER));
    for i in 0..l.m2p_l1s {
        put(l.m2p_l2(), i, pte::mk_pte(l.m2p_l1(i), HYP_RO_USER));
    }
    for i in 0..l.m2p_frames {
        put(
            l.m2p_l1(i / 512),
            i % 512,
            pte::mk_pte(l.m2p_data(i), HYP_RO_USER),
        );
    }
    for mfn in 0..l.m2p_entries() {
        let pfn = m2p.get(mfn as usize).copied().unwrap_or(u64::MAX);
        ram.write_u64_phys(l.m2p_gpa(mfn), pfn);
    }
    // Per-domain area: one L3 -> L2 -> L1 mapping PD_PAGES pages, supervisor only; code pages
    // read-only and executable, the rest no-execute.
    // USER on the intermediate levels so the entry page's own USER bit decides (see below);
    // every other per-domain page stays supervisor-only at L1.
    put(
        l.pd_l3(),
        0,
        pte::mk_pte(l.pd_l2(), HYP_RW | pte::_PAGE_USER),
    );
    put(
        l.pd_l2(),
        0,
        pte::mk_pte(l.pd_l1(), HYP_RW | pte::_PAGE_USER),
    );
    for p in 0..PD_PAGES {
        let (frame, flags) = match p {
            PD_VECTORS => (l.pd_page(p), pte::_PAGE_PRESENT | pte::_PAGE_ACCESSED),
            // This host's KVM may leave the vCPU at CPL 3 when SYSCALL enters LSTAR (it did
            // so measurably): the entry page must then be executable from CPL 3. It holds
            // only `out; ud2` stubs and the trampoline, which does nothing useful at CPL 3
            // (its stores go through the supervisor direct map and fault), so a guest that
            // jumps here gains nothing it could not get by executing SYSCALL.
            PD_ENTRY => (
                l.pd_page(p),
                pte::_PAGE_PRESENT | pte::_PAGE_ACCESSED | pte::_PAGE_USER,
            ),
            _ if p < xen::FIRST_RESERVED_GDT_PAGE => (l.pd_page(PD_ZERO), gdt_zero_flags()),
            _ => (l.pd_page(p), HYP_RW | nx),
        };
        put(l.pd_l1(), p, pte::mk_pte(frame, flags));
    }
    // Direct map of [0, end of the area) with 2 MiB pages.
    for i in 0..l.dm_l2s {
        put(l.dm_l3(), i, pte::mk_pte(l.dm_l2(i), HYP_RW));
        for j in 0..512 {
            let frame = (i * 512 + j) * 512;
            if frame < l.end_frame() {
                put(
                    l.dm_l2(i),
                    j,
                    pte::mk_pte(frame, HYP_RW | pte::_PAGE_PSE | nx),
                );
            }
        }
    }

    // Xen's reserved GDT page (asm/desc.c's boot_gdt) with our TSS descriptor.
    // Selectors index the whole GDT; these all lie in the reserved page.
    let reserved = |sel: u16| u64::from(sel & !7);
    let gdt = |off: u64, v: u64| {
        ram.write_u64_phys(l.gdt_gpa(off), v);
    };
    gdt(reserved(xen::HYPERVISOR_CS), 0x00af_9b00_0000_ffff);
    gdt(reserved(xen::HYPERVISOR_DS32), 0x00cf_9300_0000_ffff);
    gdt(reserved(xen::FLAT_RING3_CS32), 0x00cf_fb00_0000_ffff);
    gdt(reserved(xen::FLAT_RING3_DS32), 0x00cf_f300_0000_ffff);
    gdt(reserved(xen::FLAT_RING3_CS64), 0x00af_fb00_0000_ffff);
    let (lo, hi) = system_descriptor(l.tss_va(), TSS_LIMIT, 0xb);
    gdt(reserved(xen::TSS_SELECTOR), lo);
    gdt(reserved(xen::TSS_SELECTOR) + 8, hi);

    // IDT: interrupt gates to the vector stubs; DPL 3 only for int3 and into (Xen's
    // set_swint_gate), so `int n` for any other n from CPL 3 raises #GP(n << 3 | 2).
    let stubs = LayoutStubs::assemble(l)?;
    for v in 0..256u64 {
        let dpl = if v == 3 || v == 4 { 3 } else { 0 };
        let (lo, hi) = gate(l.vector_stub(v as u8), xen::HYPERVISOR_CS, dpl);
        let gpa = (l.pd_page(PD_IDT) << 12) + v * 16;
        ram.write_u64_phys(gpa, lo);
        ram.write_u64_phys(gpa + 8, hi);
    }
    ram.write_phys(l.pd_page(PD_VECTORS) << 12, &stubs.vectors);
    ram.write_phys(l.pd_page(PD_ENTRY) << 12, &stubs.entry);

    // vCPU 0's vcpu_info starts with events masked (Xen's `vcpu_info_reset`).
    ram.write_phys((l.shared_info_mfn() << 12) + 1, &[1]);

    // TSS: rsp0 = the ring-0 stack, I/O bitmap at offset 104 with every port closed except
    // the hypercall port.
    let tss = l.pd_page(PD_TSS) << 12;
    ram.write_u64_phys(tss + 4, l.stack_top());
    let iomap = (TSS_SIZE as u16).to_le_bytes();
    ram.write_phys(tss + 102, &iomap);
    let mut bitmap = vec![0xffu8; 8192 + 1];
    let hp = crate::builder::HYPERCALL_PORT;
    for p in (hp..hp + 4).chain(port::SYSCALL..=port::SYSENTER) {
        let p = usize::from(p);
        bitmap[p / 8] &= !(1 << (p % 8));
    }
    ram.write_phys(tss + TSS_SIZE, &bitmap);
    Ok(())
}

/// A 16-byte system descriptor (TSS: type 0x9 available, 0xb busy).
pub(super) fn system_descriptor(base: u64, limit: u32, ty: u64) -> (u64, u64) {
    let lo = u64::from(limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (ty << 40)
        | (1 << 47)
        | ((u64::from(limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    (lo, base >> 32)
}

/// A 64-bit interrupt gate.
pub(super) fn gate(target: u64, sel: u16, dpl: u64) -> (u64, u64) {
    let lo = (target & 0xffff)
        | (u64::from(sel) << 16)
        | (0xe << 40)
        | (dpl << 45)
        | (1 << 47)
        | (((target >> 16) & 0xffff) << 48);
    (lo, target >> 32)
}

/// Vectors for which the CPU pushes an error code.
pub const fn has_error_code(v: u8) -> bool {
    matches!(v, 8 | 10..=14 | 17 | 21 | 29 | 30)
}
