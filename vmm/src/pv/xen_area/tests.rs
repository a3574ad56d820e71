use super::build::{gate, system_descriptor};
use super::stubs::LayoutStubs;
use super::*;

#[test]
fn layout_is_disjoint_and_after_ram() {
    let l = XenLayout::new(16384).unwrap();
    assert_eq!(l.base_frame, 16384);
    assert!(l.pd_l3() > l.m2p_data(l.m2p_frames - 1));
    assert!(l.dm_l3() > l.pd_page(PD_PAGES - 1));
    // The grant frames lie after every table of the area, inside it.
    assert!(l.gnttab_shared_mfn(0) > l.dm_l2(l.dm_l2s - 1));
    assert_eq!(
        l.gnttab_status_mfn(GNTTAB_MAX_STATUS_FRAMES - 1) + 1,
        l.end_frame()
    );
    assert_eq!(l.end_frame(), l.base_frame + l.nr_frames);
    // The M2P covers every frame the domain can name, the area's included.
    assert!(l.m2p_entries() >= l.end_frame());
    // The direct map reaches the end of the area.
    assert!(l.dm_l2s * 512 * 512 >= l.end_frame());
    assert_eq!(
        l.pd_gpa(l.stack_top() - 8),
        Some((l.pd_page(PD_STACK + 1) << 12) + 4088)
    );
    assert_eq!(l.pd_gpa(XenLayout::pd_va(PD_PAGES)), None);
}

#[test]
fn stubs_are_what_they_say() {
    let l = XenLayout::new(4096).unwrap();
    let s = LayoutStubs::assemble(&l).unwrap();
    // #DE: out 0x80, al; ud2. #PF: out 0x8e, al; ud2. Vector 200: out 0xa0, al.
    assert_eq!(&s.vectors[..4], &[0xe6, 0x80, 0x0f, 0x0b]);
    assert_eq!(&s.vectors[14 * 16..14 * 16 + 4], &[0xe6, 0x8e, 0x0f, 0x0b]);
    assert_eq!(&s.vectors[200 * 16..200 * 16 + 2], &[0xe6, 0xa0]);
    assert_eq!(&s.entry[..2], &[0xe6, port::SYSCALL as u8]);
    // The trampoline decodes and ends in out SYNC_DONE; ud2.
    let t = &s.entry[ENTRY_SYNC as usize..];
    let end = t.windows(4).position(|w| w == [0xe6, 0xe4, 0x0f, 0x0b]);
    assert!(end.is_some());
}

#[test]
fn descriptors() {
    // The 64-bit ring-0 code gate to 0xffff820000013000 with DPL 3.
    let (lo, hi) = gate(0xffff_8200_0001_3010, 0xe008, 3);
    assert_eq!(lo & 0xffff, 0x3010);
    assert_eq!((lo >> 16) & 0xffff, 0xe008);
    assert_eq!((lo >> 40) & 0xff, 0xee);
    assert_eq!(lo >> 48, 0x0001);
    assert_eq!(hi, 0xffff_8200);
    let (lo, hi) = system_descriptor(0xffff_8200_0001_0000, TSS_LIMIT, 0xb);
    assert_eq!(lo & 0xffff, u64::from(TSS_LIMIT & 0xffff));
    assert_eq!((lo >> 40) & 0xff, 0x8b);
    assert_eq!(hi, 0xffff_8200);
}

mod walk_tests {
    use super::*;

    /// Walks `va` from an L4 holding only the Xen slots, through the area's own tables.
    fn walk(ram: &GuestRam, l4: &[u64; XEN_L4_SLOTS], va: u64) -> Option<u64> {
        let first = pagetable_validator::abi::ROOT_PAGETABLE_FIRST_XEN_SLOT;
        let mut e = l4[pte::table_index(va, 4) - first];
        for level in (1..=3u32).rev() {
            if e & pte::_PAGE_PRESENT == 0 {
                return None;
            }
            let t = e & pte::PTE_ADDR_MASK;
            e = ram.read_u64_phys(t + pte::table_index(va, level) as u64 * 8)?;
            if level == 2 && e & pte::_PAGE_PSE != 0 {
                return Some((e & pte::PTE_ADDR_MASK & !0x1f_ffff) | (va & 0x1f_ffff));
            }
        }
        (e & pte::_PAGE_PRESENT != 0).then_some((e & pte::PTE_ADDR_MASK) | (va & 0xfff))
    }

    #[test]
    fn the_cpu_finds_what_was_written() {
        let ram_frames = 16384;
        let l = XenLayout::new(ram_frames).unwrap();
        let ram = GuestRam::new(64, Some((l.base_frame, l.nr_frames))).unwrap();
        let m2p: Vec<u64> = (0..ram_frames).collect();
        build(&l, &ram, &m2p).unwrap();
        let mut slots = l.l4_slots();
        slots[0] = l.ro_mpt_l4e();
        let rd = |va: u64| ram.read_u64_phys(walk(&ram, &slots, va).unwrap()).unwrap();
        // Xen's ring-0 code descriptor and our TSS descriptor, through the GDT mapping.
        assert_eq!(rd(l.gdt_va() + 0xe008), 0x00af_9b00_0000_ffff);
        assert_eq!(rd(l.gdt_va() + 0xe030), 0x00af_fb00_0000_ffff);
        // The IDT gate of #GP points at its stub, whose code is there.
        let lo = rd(l.idt_va() + 13 * 16);
        let hi = rd(l.idt_va() + 13 * 16 + 8);
        let target = (lo & 0xffff) | ((lo >> 32) & 0xffff_0000) | (hi << 32);
        assert_eq!((lo >> 16) & 0xffff, u64::from(xen::HYPERVISOR_CS));
        let code = rd(target);
        assert_eq!(code & 0xffff, 0x8de6);
        // rsp0 in the TSS, the M2P, the direct map.
        assert_eq!(rd(l.tss_va() + 4), l.stack_top());
        assert_eq!(rd(xen::MACH2PHYS_VIRT_START + 8 * 77), 77);
        assert_eq!(
            walk(&ram, &slots, XenLayout::directmap_va(0x123_4568)),
            Some(0x123_4568)
        );
        // Unused guest GDT pages read as zero.
        assert_eq!(rd(l.gdt_va() + 0x10), 0);
    }
}
