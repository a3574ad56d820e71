//! Descriptor pages (`PGT_seg_desc_page`): set_gdt and update_descriptor.
//! Expectations from Xen 4.17's `pv/descriptor-tables.c` and `mm.c`.

use super::*;
use pagetable_validator::{ViolationKind, FIRST_RESERVED_GDT_ENTRY};

const KERNEL_CS: u64 = 0x00af_9b00_0000_ffff;
const KERNEL_CS_FIXED: u64 = 0x00af_fb00_0000_ffff;
const TSS: u64 = 0x0000_8900_0000_0067;

#[test]
fn set_gdt_validates_fixes_up_and_types_the_frames() {
    let (mut s, mut v, _) = kernel_space();
    s.mem.write_entry(Mfn(50), 1, KERNEL_CS);
    v.set_gdt(&mut s.mem, &[Mfn(50)], 16).unwrap();
    // check_descriptor raised the DPL to 3, in the frame itself.
    assert_eq!(s.mem.read_entry(Mfn(50), 1), KERNEL_CS_FIXED);
    let f = info(&v, Mfn(50));
    assert_eq!(
        (f.ty, f.type_count, f.validated, f.refs),
        (PageType::SegDesc, 1, true, 1)
    );
    assert_eq!((v.gdt_frames(), v.gdt_entries()), (&[Mfn(50)][..], 16));
    check(&v, &s.mem);
    // A new GDT takes its references before the old one's go: a frame in both
    // stays typed; the one left out is untyped again.
    v.set_gdt(&mut s.mem, &[Mfn(51), Mfn(50)], 1024).unwrap();
    assert_eq!(info(&v, Mfn(50)).type_count, 1);
    assert_eq!(info(&v, Mfn(51)).ty, PageType::SegDesc);
    v.set_gdt(&mut s.mem, &[Mfn(51)], 512).unwrap();
    assert_eq!(
        (info(&v, Mfn(50)).ty, info(&v, Mfn(50)).refs),
        (PageType::None, 0)
    );
    check(&v, &s.mem);
    // An empty GDT releases everything.
    v.set_gdt(&mut s.mem, &[], 0).unwrap();
    assert_eq!(info(&v, Mfn(51)).ty, PageType::None);
    check(&v, &s.mem);
}

#[test]
fn set_gdt_errors_change_nothing() {
    let (mut s, mut v, _) = kernel_space();
    v.set_gdt(&mut s.mem, &[Mfn(50)], 1).unwrap();
    let before = v.frames_snapshot();
    // Too many entries, a frame outside the domain, a bad descriptor in the
    // second frame (the first frame's reference is released again).
    assert_eq!(
        errno(v.set_gdt(&mut s.mem, &[Mfn(60); 16], FIRST_RESERVED_GDT_ENTRY + 1)),
        -22
    );
    assert_eq!(errno(v.set_gdt(&mut s.mem, &[Mfn(NR + 5)], 1)), -22);
    s.mem.write_entry(Mfn(61), 7, TSS);
    v.drain_events();
    assert_eq!(errno(v.set_gdt(&mut s.mem, &[Mfn(60), Mfn(61)], 1000)), -22);
    let l = log(&mut v);
    assert!(l.contains("Error while validating mfn 0003d"), "{l}");
    assert!(l.contains("for type a000000000000000"), "{l}");
    assert_eq!(before, v.frames_snapshot());
    assert_eq!(v.gdt_frames(), &[Mfn(50)]);
    // Frames missing from the list: -EFAULT.
    assert_eq!(errno(v.set_gdt(&mut s.mem, &[Mfn(60)], 513)), -14);
    check(&v, &s.mem);
}

#[test]
fn descriptor_pages_and_writable_mappings_exclude_each_other() {
    let (mut s, mut v, l4) = kernel_space();
    // kernel_space maps slots 0..4 of the L1 at KVA; slot 5 maps frame 60 RW.
    let (l1, slot) = (s.table_of(l4, KVA, 1), 5);
    assert_eq!(
        mmu(&mut v, &mut s.mem, l1, slot, mk_pte(60, PAGE_KERNEL)),
        0
    );
    v.drain_events();
    // Still mapped RW: "Bad type", -EINVAL, with the stray mapping's provenance.
    assert_eq!(errno(v.set_gdt(&mut s.mem, &[Mfn(60)], 1)), -22);
    let ev = v.drain_events();
    let text = ev.iter().map(|e| e.to_string()).collect::<String>();
    assert!(
        text.contains("Bad type (saw e400000000000001 != exp a000000000000000) for mfn 0003c"),
        "{text}"
    );
    let vi = &ev[0].violations[0];
    assert_eq!(
        (vi.kind, vi.frame, vi.wanted),
        (ViolationKind::StrayWritable, Mfn(60), PageType::SegDesc)
    );
    assert_eq!((vi.mappings[0].l1, vi.mappings[0].slot), (l1, slot as u16));
    // Read-only, it works; then a new RW mapping is refused like one of a
    // pagetable (get_page_from_l1e: -EBUSY).
    assert_eq!(
        mmu(&mut v, &mut s.mem, l1, slot, mk_pte(60, PAGE_KERNEL_RO)),
        0
    );
    v.set_gdt(&mut s.mem, &[Mfn(60)], 1).unwrap();
    v.drain_events();
    assert_eq!(
        mmu(&mut v, &mut s.mem, l1, slot + 1, mk_pte(60, PAGE_KERNEL)),
        -16
    );
    assert!(log(&mut v).contains("Could not get page type PGT_writable_page"));
    check(&v, &s.mem);
}

#[test]
fn audit_tolerates_a_writable_mapping_of_a_descriptor_page() {
    let mut s = Space::new(NR, Mfn(1));
    let l4 = s.alloc();
    let (l1, slot) = s.map(l4, KVA, Mfn(60), PAGE_KERNEL);
    let mut v = Validator::new(NR, Policy::Audit);
    v.register_initial(&mut s.mem, l4).unwrap();
    v.drain_events();
    v.set_gdt(&mut s.mem, &[Mfn(60)], 1).unwrap();
    let ev = v.drain_events();
    assert!(ev[0].violations[0].tolerated);
    assert_eq!(ev[0].violations[0].mappings[0].l1, l1);
    assert_eq!(ev[0].violations[0].mappings[0].slot, slot as u16);
    assert_eq!(info(&v, Mfn(60)).tolerated_writable, 1);
    check(&v, &s.mem);
}

#[test]
fn update_descriptor_follows_do_update_descriptor() {
    let (mut s, mut v, l4) = kernel_space();
    v.set_gdt(&mut s.mem, &[Mfn(50)], 512).unwrap();
    // Into the GDT: checked, fixed up, stored.
    assert_eq!(
        errno(v.update_descriptor(&mut s.mem, 50 << 12 | 8, KERNEL_CS)),
        0
    );
    assert_eq!(s.mem.read_entry(Mfn(50), 1), KERNEL_CS_FIXED);
    // Misaligned, a refused descriptor, outside the domain: -EINVAL, no store.
    assert_eq!(
        errno(v.update_descriptor(&mut s.mem, 50 << 12 | 4, KERNEL_CS)),
        -22
    );
    assert_eq!(
        errno(v.update_descriptor(&mut s.mem, 50 << 12 | 16, TSS)),
        -22
    );
    assert_eq!(
        errno(v.update_descriptor(&mut s.mem, (NR + 1) << 12, KERNEL_CS)),
        -22
    );
    assert_eq!(s.mem.read_entry(Mfn(50), 2), 0);
    // An ordinary frame takes it too (Xen: a transient writable reference).
    assert_eq!(
        errno(v.update_descriptor(&mut s.mem, 70 << 12, KERNEL_CS)),
        0
    );
    assert_eq!(s.mem.read_entry(Mfn(70), 0), KERNEL_CS_FIXED);
    // A pagetable does not: "Bad type" for the writable reference.
    v.drain_events();
    let was = s.mem.read_entry(l4, 0);
    assert_eq!(
        errno(v.update_descriptor(&mut s.mem, l4.maddr(), KERNEL_CS)),
        -22
    );
    assert!(log(&mut v).contains("Bad type (saw"));
    assert_eq!(s.mem.read_entry(l4, 0), was);
    check(&v, &s.mem);
}

#[test]
fn mmu_update_into_a_descriptor_page_is_refused() {
    // do_mmu_update: a seg_desc page in use matches none of its type cases, so the
    // request keeps its -EINVAL and nothing is written (the fuzzer found the plain write).
    let (mut s, mut v, _) = kernel_space();
    s.mem.write_entry(Mfn(50), 1, KERNEL_CS);
    v.set_gdt(&mut s.mem, &[Mfn(50)], 16).unwrap();
    let req = MmuUpdate {
        ptr: 50 * 4096 + 8,
        val: 0x1234,
    };
    assert_eq!(v.mmu_update(&mut s.mem, req).unwrap_err().errno(), -22);
    assert_eq!(s.mem.read_entry(Mfn(50), 1), KERNEL_CS_FIXED);
    check(&v, &s.mem);
    // Once the GDT lets go of it, it is plain memory again.
    v.set_gdt(&mut s.mem, &[], 0).unwrap();
    v.mmu_update(&mut s.mem, req).unwrap();
    assert_eq!(s.mem.read_entry(Mfn(50), 1), 0x1234);
}
