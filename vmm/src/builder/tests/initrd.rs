use super::*;
use pagetable_validator::abi::start_info_offset as so;

const BASE: u64 = 0xffff_ffff_8000_0000;

/// The mini kernel with one more Xen note: MOD_START_PFN = `val` (4 bytes, as Linux).
fn mini_kernel_mod_start_pfn(val: u32) -> Vec<u8> {
    let mut k = super::fuzz::mini_kernel();
    // The PT_NOTE program header is the second (at 120); its notes start at 0x100.
    let filesz = u64::from_le_bytes(k[120 + 32..120 + 40].try_into().unwrap()) as usize;
    let mut note = Vec::new();
    note.extend_from_slice(&4u32.to_le_bytes());
    note.extend_from_slice(&4u32.to_le_bytes());
    note.extend_from_slice(&abi::elfnote::MOD_START_PFN.to_le_bytes());
    note.extend_from_slice(b"Xen\0");
    note.extend_from_slice(&val.to_le_bytes());
    let at = 0x100 + filesz;
    k[at..at + note.len()].copy_from_slice(&note);
    let n = ((filesz + note.len()) as u64).to_le_bytes();
    k[120 + 32..120 + 40].copy_from_slice(&n);
    k[120 + 40..120 + 48].copy_from_slice(&n);
    k
}

fn cfg(initrd: &[u8], mem_mib: u64) -> BuildConfig<'_> {
    BuildConfig {
        mem_mib,
        cmdline: "",
        // pfn != mfn, so a placement that confuses them shows.
        p2m: P2mMode::Shuffle { seed: 3 },
        initrd: Some(initrd),
    }
}

/// A pattern that differs on every page, 3.5 pages long (the last page partly used).
fn initrd_bytes() -> Vec<u8> {
    (0..14_336u32).map(|i| (i * 7 + i / 4096) as u8).collect()
}

/// (flags, mod_start, mod_len) of the built domain's start_info.
fn start_info_mod(d: &Domain) -> (u32, u64, u64) {
    let cr3 = d.l4_mfn << 12;
    let mut si = [0u8; so::SIZE];
    d.ram.read_virt(cr3, d.layout.start_info, &mut si).unwrap();
    let u64_at = |o: usize| u64::from_le_bytes(si[o..o + 8].try_into().unwrap());
    let flags = u32::from_le_bytes(si[so::FLAGS..so::FLAGS + 4].try_into().unwrap());
    (flags, u64_at(so::MOD_START), u64_at(so::MOD_LEN))
}

#[test]
fn xen_places_linux_initrd_after_the_power_of_two_allocation() {
    // Debian's 6.1.192 kernel on real Xen 4.17 with dom0_mem=256M and a 1626651-byte
    // initramfs: "Dom0 alloc.: 0x10000000->0x18000000 (32370 pages to be allocated)",
    // i.e. 32768 pages for the 76 MiB initial mapping, the initrd's 398 pages from pfn 32768.
    let l = compute_layout(BASE + 0x100_0000, BASE + 0x4a0_0000, 0, BASE, 65536).unwrap();
    assert_eq!(l.v_end, BASE + 0x4c0_0000);
    let p = place_initrd(&l, 65536, 1_626_651, None).unwrap();
    assert_eq!(
        p,
        InitrdPlacement {
            pfn: 32768,
            len: 1_626_651,
            va: None
        }
    );
    assert_eq!(65536 - p.pfn - p.len.div_ceil(4096), 32370);
    // One page short: Xen panics "Domain 0 allocation is too small for kernel image".
    assert!(matches!(
        place_initrd(&l, 32768 + 397, 1_626_651, None),
        Err(BuildError::TooLittleMemory { .. })
    ));
    assert!(place_initrd(&l, 32768 + 398, 1_626_651, None).is_ok());
}

#[test]
fn mod_start_pfn_kernel_gets_the_initrd_by_pfn() {
    let k = mini_kernel_mod_start_pfn(1);
    let img = KernelImage::parse(&k).unwrap();
    assert!(img.xen.unmapped_initrd);
    let data = initrd_bytes();
    let d = build(&img, &cfg(&data, 8)).unwrap();
    let i = d.initrd.unwrap();
    // The 4 MiB initial mapping is 1024 pages, a power of two: the initrd starts at pfn 1024.
    assert_eq!(d.layout.v_end - d.layout.v_start, 4 << 20);
    assert_eq!((i.pfn, i.len, i.va), (1024, data.len() as u64, None));
    let (flags, mod_start, mod_len) = start_info_mod(&d);
    assert_eq!(flags & sif::MOD_START_PFN, sif::MOD_START_PFN);
    assert_eq!(
        flags & (sif::PRIVILEGED | sif::INITDOMAIN),
        sif::PRIVILEGED | sif::INITDOMAIN
    );
    assert_eq!((mod_start, mod_len), (1024, data.len() as u64));
    // Page by page in the frames the P2M gives those pfns; not in the initial mapping.
    for (n, chunk) in data.chunks(4096).enumerate() {
        let pfn = 1024 + n as u64;
        let mfn = d.m2p.iter().position(|&p| p == pfn).unwrap() as u64;
        assert_ne!(mfn, pfn, "the shuffled P2M moved this page");
        let mut got = vec![0u8; chunk.len()];
        assert!(d.ram.read_phys(mfn << 12, &mut got));
        assert_eq!(got, chunk, "page {n}");
    }
    // The layout is the one without an initrd (P2M right after the kernel).
    let plain = build(
        &img,
        &BuildConfig {
            initrd: None,
            ..cfg(&data, 8)
        },
    )
    .unwrap();
    assert_eq!(plain.layout.p2m, d.layout.p2m);
    assert_eq!(
        start_info_mod(&plain),
        (sif::PRIVILEGED | sif::INITDOMAIN, 0, 0)
    );
    // 1024 + 4 pages do not fit in 4 MiB of RAM (1024 pages).
    assert!(matches!(
        build(&img, &cfg(&data, 4)),
        Err(BuildError::TooLittleMemory { .. })
    ));
}

#[test]
fn other_kernels_get_the_initrd_mapped_after_the_kernel() {
    // No MOD_START_PFN note, or one with value 0 (libelf: unmapped_initrd = !!val).
    for k in [super::fuzz::mini_kernel(), mini_kernel_mod_start_pfn(0)] {
        let img = KernelImage::parse(&k).unwrap();
        assert!(!img.xen.unmapped_initrd);
        let data = initrd_bytes();
        let d = build(&img, &cfg(&data, 8)).unwrap();
        let i = d.initrd.unwrap();
        let kend = round_up(img.xen.virt_kend, PAGE_SIZE).unwrap();
        assert_eq!(i.va, Some(kend));
        assert_eq!(i.pfn, (kend - d.layout.v_start) >> 12);
        // The P2M moves up behind the initrd: Xen's vphysmap_start = round_pgup(vinitrd_end).
        assert_eq!(d.layout.p2m.0, kend + 4 * 4096);
        let (flags, mod_start, mod_len) = start_info_mod(&d);
        assert_eq!(flags & sif::MOD_START_PFN, 0);
        assert_eq!((mod_start, mod_len), (kend, data.len() as u64));
        // Readable (and writable, like Xen's L1_PROT) at that address in the initial mapping.
        let mut got = vec![0u8; data.len()];
        d.ram.read_virt(d.l4_mfn << 12, kend, &mut got).unwrap();
        assert_eq!(got, data);
        assert!(d.ram.translate(d.l4_mfn << 12, kend, true).is_ok());
    }
}
