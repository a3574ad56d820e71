use super::*;
use crate::builder::hypercall_page::hypercall_stub;

#[test]
fn layout_matches_xen_shape() {
    // A 50 KiB kernel at 0xffffffff80200000 with 64 MiB (16384 pages): P2M is 128 KiB.
    let base = 0xffff_ffff_8000_0000;
    let l = compute_layout(base + 0x20_0000, base + 0x20_d000, 0, base, 16384).unwrap();
    assert_eq!(l.p2m, (base + 0x20_d000, base + 0x20_d000 + 16384 * 8));
    assert_eq!(l.start_info, base + 0x22_d000);
    assert_eq!(l.pt.0, base + 0x22_e000);
    // L4 + L3 + L2 + two L1s (the mapping is 4 MiB) -> 5 frames.
    assert_eq!(l.nr_pt_frames, 5);
    assert_eq!(l.v_end, base + 0x40_0000);
    assert!(l.v_end - l.stack.1 >= 512 * 1024);
}

#[test]
fn shuffle_is_a_seeded_permutation() {
    let a = make_p2m(4096, P2mMode::Shuffle { seed: 7 });
    let b = make_p2m(4096, P2mMode::Shuffle { seed: 7 });
    let c = make_p2m(4096, P2mMode::Shuffle { seed: 8 });
    assert_eq!(a, b);
    assert_ne!(a, c);
    let mut s = a.clone();
    s.sort_unstable();
    assert_eq!(s, (0..4096).collect::<Vec<_>>());
    assert!(
        a.iter()
            .enumerate()
            .filter(|(i, &m)| *i as u64 == m)
            .count()
            < 64
    );
}

#[test]
fn stub_bytes() {
    let s = hypercall_stub(26);
    assert_eq!(&s, &[0xb8, 26, 0, 0, 0, 0xe7, HYPERCALL_PORT as u8, 0xc3]);
    let page = hypercall_page();
    assert_eq!(&page[26 * 32..26 * 32 + 8], &s);
    // iret: push rcx; push r11; push rax; mov eax, 23; out; ud2.
    let i = 23 * 32;
    assert_eq!(&page[i..i + 4], &[0x51, 0x41, 0x53, 0x50]);
    assert_eq!(&page[i + 4..i + 9], &[0xb8, 23, 0, 0, 0]);
    assert_eq!(&page[i + 11..i + 13], &[0x0f, 0x0b]);
}

mod fuzz;
mod initrd;
