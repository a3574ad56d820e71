//! The PV domain builder, shaped like Xen's dom0 builder (`xen/arch/x86/pv/dom0_build.c`).
//!
//! Virtual layout from `v_start` = VIRT_BASE, all mapped to pfn `(va - v_start) >> 12`:
//! kernel image, P2M table (`mfn_list`), start_info, bootstrap page tables, one boot-stack
//! page, then padding to a 4 MiB boundary (at least 512 KiB). Everything is mapped with 4 KiB
//! pages; the frames of the page tables are mapped read-only; the L4 is registered (validated +
//! pinned + made current) with the validator. Writes to guest memory go pfn -> mfn through the
//! P2M, which is the identity or a seeded random permutation (`--p2m shuffle`).

use crate::loader::elf::KernelImage;
use crate::memory::GuestRam;
use crate::pv::xen_area::{self, XenAreaError, XenLayout};
use pagetable_validator::abi::{self, sif, start_info_offset as so};
use pagetable_validator::pte::{self, layout, mk_pte, PAGE_SIZE};
use pagetable_validator::Region;
use thiserror::Error;

/// Port the hypercall stubs write the hypercall number to.
pub const HYPERCALL_PORT: u16 = 0xec;

const L1_PROT: u64 = pte::_PAGE_PRESENT | pte::_PAGE_RW | pte::_PAGE_ACCESSED;
const LN_PROT: u64 = pte::_PAGE_PRESENT | pte::_PAGE_RW | pte::_PAGE_ACCESSED | pte::_PAGE_DIRTY;
const MIB: u64 = 1 << 20;

#[derive(Debug, Error)]
pub enum BuildError {
    #[error("too little memory: the kernel's initial mapping needs {need_mib} MiB, --mem is {have_mib} MiB")]
    TooLittleMemory { need_mib: u64, have_mib: u64 },
    #[error("kernel layout does not fit below the top of the address space (virt_base {0:#x})")]
    AddressOverflow(u64),
    #[error("PT_LOAD segment at {0:#x} lies outside the kernel's initial mapping")]
    SegmentOutside(u64),
    #[error(transparent)]
    XenArea(#[from] XenAreaError),
    #[error(transparent)]
    Memory(#[from] crate::memory::MemoryError),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum P2mMode {
    Identity,
    Shuffle { seed: u64 },
}

/// Where the builder put things (virtual addresses), for the guest registers and logs.
#[derive(Clone, Debug)]
pub struct Layout {
    pub v_start: u64,
    pub v_end: u64,
    pub kernel: (u64, u64),
    pub p2m: (u64, u64),
    pub start_info: u64,
    pub pt: (u64, u64),
    pub stack: (u64, u64),
    pub nr_pt_frames: u64,
}

/// Where the builder put the initrd (`--initrd`): Xen's dom0 builder's first module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitrdPlacement {
    /// First pfn of the initrd (its pages are contiguous in pfn space).
    pub pfn: u64,
    /// Length in bytes (`start_info.mod_len`).
    pub len: u64,
    /// Its virtual address in the initial mapping, or `None` for a kernel with
    /// XEN_ELFNOTE_MOD_START_PFN (then `start_info.mod_start` is `pfn` and the flags have
    /// SIF_MOD_START_PFN).
    pub va: Option<u64>,
}

/// Places an initrd of `len` bytes as Xen 4.17's `dom0_construct_pv` does. Mapped (the
/// kernel has no MOD_START_PFN note): at `round_pgup(kernel end)` = `mapped_va`, where
/// `layout` (computed with the initrd's length) left room for it before the P2M. Unmapped:
/// after the first allocation, whose size is the initial mapping rounded up to a power of two
/// pages (`get_order_from_bytes(v_end - v_start)`), so its first pfn is `1 << order`. Either
/// way Xen panics ("Domain 0 allocation is too small for kernel image") unless
/// `(1 << order) + PFN_UP(len)` pages fit, where the mapped initrd's pages are not counted in
/// the mapping's order.
pub fn place_initrd(
    layout: &Layout,
    nr_pages: u64,
    len: u64,
    mapped_va: Option<u64>,
) -> Result<InitrdPlacement, BuildError> {
    let pages = len.div_ceil(PAGE_SIZE);
    let mapping = layout.v_end - layout.v_start;
    let count = match mapped_va {
        Some(_) => mapping - pages * PAGE_SIZE,
        None => mapping,
    };
    let order_pages = count.div_ceil(PAGE_SIZE).max(1).next_power_of_two();
    let need = order_pages + pages;
    if need > nr_pages {
        return Err(BuildError::TooLittleMemory {
            need_mib: (need * PAGE_SIZE).div_ceil(MIB),
            have_mib: nr_pages * PAGE_SIZE / MIB,
        });
    }
    let pfn = match mapped_va {
        Some(va) => (va - layout.v_start) >> 12,
        None => order_pages,
    };
    Ok(InitrdPlacement {
        pfn,
        len,
        va: mapped_va,
    })
}

/// A built domain: its memory, P2M, and the initial register values.
pub struct Domain {
    pub ram: GuestRam,
    /// mfn -> pfn.
    pub m2p: Vec<u64>,
    pub layout: Layout,
    pub entry: u64,
    pub l4_mfn: u64,
    pub hypercall_page: Option<u64>,
    /// The Xen area (outside RAM): GDT, IDT, TSS, entry stubs, M2P, shared_info.
    pub xen: XenLayout,
    pub cmdline_truncated: bool,
    pub initrd: Option<InitrdPlacement>,
}

fn round_up(x: u64, a: u64) -> Option<u64> {
    x.div_ceil(a).checked_mul(a)
}

/// splitmix64: a tiny, well-mixed PRNG; enough to shuffle frames reproducibly.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn make_p2m(nr_pages: u64, mode: P2mMode) -> Vec<u64> {
    let mut p2m: Vec<u64> = (0..nr_pages).collect();
    if let P2mMode::Shuffle { seed } = mode {
        let mut s = seed;
        for i in (1..p2m.len()).rev() {
            let j = (splitmix64(&mut s) % (i as u64 + 1)) as usize;
            p2m.swap(i, j);
        }
    }
    p2m
}

/// Computes the layout exactly like Xen's loop over `nr_pt_pages`. `initrd_va_len`: the length
/// of an initrd mapped right after the kernel (0 when there is none or it is not mapped).
fn compute_layout(
    kstart: u64,
    kend: u64,
    initrd_va_len: u64,
    v_start: u64,
    nr_pages: u64,
) -> Option<Layout> {
    let p2m_start = round_up(
        round_up(kend, PAGE_SIZE)?.checked_add(initrd_va_len)?,
        PAGE_SIZE,
    )?;
    let p2m_end = p2m_start.checked_add(nr_pages * 8)?;
    let si_start = round_up(p2m_end, PAGE_SIZE)?;
    let si_end = si_start.checked_add(PAGE_SIZE)?;
    let pt_start = si_end;
    let mut nr_pt = 2u64;
    loop {
        let pt_end = pt_start.checked_add(nr_pt * PAGE_SIZE)?;
        let stack_end = pt_end.checked_add(PAGE_SIZE)?;
        let mut v_end = stack_end.checked_add(4 * MIB - 1)? & !(4 * MIB - 1);
        if v_end - stack_end < 512 * 1024 {
            v_end = v_end.checked_add(4 * MIB)?;
        }
        // Xen's count: one L4, plus the L3s, L2s and L1s the range [v_start, v_end) touches.
        let needed = 1
            + count_blocks(v_start, v_end, 39)
            + count_blocks(v_start, v_end, 30)
            + count_blocks(v_start, v_end, 21);
        if needed <= nr_pt {
            return Some(Layout {
                v_start,
                v_end,
                kernel: (kstart, kend),
                p2m: (p2m_start, p2m_end),
                start_info: si_start,
                pt: (pt_start, pt_end),
                stack: (pt_end, stack_end),
                nr_pt_frames: nr_pt,
            });
        }
        nr_pt += 1;
    }
}

/// Number of distinct (1 << s)-aligned blocks touched by [lo, hi), hi exclusive (hi may be 0 = 2^64).
fn count_blocks(lo: u64, hi: u64, s: u32) -> u64 {
    let last = hi.wrapping_sub(1) >> s;
    last - (lo >> s) + 1
}

/// The stub of hypercall `nr` (at `nr * 32` in the page): `mov eax, nr; out PORT, eax; ret`.
/// The guest runs at CPL 3; the TSS I/O bitmap opens only this port, so the `out` is an exit
/// to the VMM and nothing else (Xen's own page makes a `syscall`, which we accept as well).
pub fn hypercall_stub(nr: u32) -> [u8; 8] {
    let n = nr.to_le_bytes();
    [
        0xb8,
        n[0],
        n[1],
        n[2],
        n[3], // mov eax, nr
        0xe7,
        HYPERCALL_PORT as u8, // out PORT, eax
        0xc3,                 // ret
    ]
}

/// `HYPERVISOR_iret` is jumped to, not called, and never returns: like Xen's stub it pushes
/// rcx, r11 and rax so that the guest stack holds Xen's `iret_context` when the VMM reads it.
pub fn iret_stub() -> [u8; 12] {
    let n = (abi::hypercall::IRET as u32).to_le_bytes();
    [
        0x51, // push rcx
        0x41,
        0x53, // push r11
        0x50, // push rax
        0xb8,
        n[0],
        n[1],
        n[2],
        n[3], // mov eax, __HYPERVISOR_iret
        0xe7,
        HYPERCALL_PORT as u8, // out PORT, eax
        0x0f,                 // (ud2, never reached)
    ]
}

/// Offset of the `out` in the stub of hypercall `nr`.
pub fn stub_out_offset(nr: u64) -> u64 {
    if nr == abi::hypercall::IRET {
        9
    } else {
        5
    }
}

/// The hypercall page: 128 stubs of 32 bytes, int3 padding.
pub(crate) fn hypercall_page() -> [u8; 4096] {
    let mut page = [0xccu8; 4096];
    for nr in 0..abi::hypercall::NR_STUBS {
        let off = (nr * abi::hypercall::STUB_SIZE) as usize;
        if nr == abi::hypercall::IRET {
            let s = iret_stub();
            page[off..off + s.len()].copy_from_slice(&s);
            page[off + s.len()] = 0x0b;
        } else {
            let s = hypercall_stub(nr as u32);
            page[off..off + s.len()].copy_from_slice(&s);
        }
    }
    page
}

pub struct BuildConfig<'a> {
    pub mem_mib: u64,
    pub cmdline: &'a str,
    pub p2m: P2mMode,
    /// The initrd (`--initrd`), passed as Xen passes dom0's first module.
    pub initrd: Option<&'a [u8]>,
}

struct Writer<'a> {
    ram: &'a GuestRam,
    p2m: &'a [u64],
    v_start: u64,
}

impl Writer<'_> {
    fn mfn_of(&self, va: u64) -> u64 {
        self.p2m[((va - self.v_start) >> 12) as usize]
    }
    /// Writes `bytes` at virtual address `va` of the initial mapping, page by page.
    fn write(&self, va: u64, bytes: &[u8]) {
        let mut done = 0usize;
        while done < bytes.len() {
            let cur = va + done as u64;
            let off = cur & (PAGE_SIZE - 1);
            let n = ((PAGE_SIZE - off) as usize).min(bytes.len() - done);
            let gpa = (self.mfn_of(cur) << 12) | off;
            let ok = self.ram.write_phys(gpa, &bytes[done..done + n]);
            debug_assert!(ok, "builder writes stay inside RAM");
            done += n;
        }
    }
    /// Writes `bytes` into the frames of pfns `pfn0..`, page by page through the P2M.
    fn write_pfns(&self, pfn0: u64, bytes: &[u8]) {
        for (i, chunk) in bytes.chunks(PAGE_SIZE as usize).enumerate() {
            let ok = self
                .ram
                .write_phys(self.p2m[pfn0 as usize + i] << 12, chunk);
            debug_assert!(ok, "builder writes stay inside RAM");
        }
    }
}

pub fn build(img: &KernelImage, cfg: &BuildConfig) -> Result<Domain, BuildError> {
    let ram_frames = cfg.mem_mib.saturating_mul(MIB / PAGE_SIZE);
    let xen = XenLayout::new(ram_frames).map_err(BuildError::XenArea)?;
    let ram = crate::memory::GuestRam::new(cfg.mem_mib, Some((xen.base_frame, xen.nr_frames)))?;
    let nr_pages = ram.size() / PAGE_SIZE;
    let x = &img.xen;
    let v_start = x.virt_base;
    let kend = round_up(x.virt_kend, PAGE_SIZE).ok_or(BuildError::AddressOverflow(v_start))?;
    let initrd_len = cfg.initrd.map_or(0, |d| d.len() as u64);
    let mapped_initrd = cfg.initrd.is_some() && !x.unmapped_initrd;
    let initrd_va_len = if mapped_initrd { initrd_len } else { 0 };
    let layout = compute_layout(x.virt_kstart, kend, initrd_va_len, v_start, nr_pages)
        .ok_or(BuildError::AddressOverflow(v_start))?;
    let need = layout.v_end - v_start;
    if need > ram.size() {
        return Err(BuildError::TooLittleMemory {
            need_mib: need.div_ceil(MIB),
            have_mib: cfg.mem_mib,
        });
    }
    let p2m = make_p2m(nr_pages, cfg.p2m);
    let mut m2p = vec![u64::MAX; nr_pages as usize];
    for (pfn, &mfn) in p2m.iter().enumerate() {
        m2p[mfn as usize] = pfn as u64;
    }
    let w = Writer {
        ram: &ram,
        p2m: &p2m,
        v_start,
    };
    let initrd = match cfg.initrd {
        Some(data) => {
            let va = mapped_initrd.then_some(kend);
            let place = place_initrd(&layout, nr_pages, initrd_len, va)?;
            w.write_pfns(place.pfn, data);
            Some(place)
        }
        None => None,
    };

    // Kernel segments, .bss zeroed (fresh memory is zero, but say it explicitly like Xen).
    let virt_offset = x.virt_base.wrapping_sub(x.paddr_offset);
    for s in &img.segments {
        let va = s.paddr.wrapping_add(virt_offset);
        if va < v_start || va.saturating_add(s.memsz) > kend {
            return Err(BuildError::SegmentOutside(va));
        }
        let file = &img.data[s.offset as usize..(s.offset + s.filesz) as usize];
        w.write(va, file);
        let zeros = vec![0u8; (s.memsz - s.filesz) as usize];
        w.write(va + s.filesz, &zeros);
    }

    // P2M table.
    let p2m_bytes: Vec<u8> = p2m.iter().flat_map(|m| m.to_le_bytes()).collect();
    w.write(layout.p2m.0, &p2m_bytes);

    // Bootstrap page tables: L4 first, then tables in the order the walk needs them.
    let pt_pfn0 = (layout.pt.0 - v_start) >> 12;
    let pt_mfn = |i: u64| p2m[(pt_pfn0 + i) as usize];
    let mut next_pt = 1u64;
    let l4 = pt_mfn(0);
    let is_pt_pfn = |pfn: u64| pfn >= pt_pfn0 && pfn < pt_pfn0 + layout.nr_pt_frames;
    let mut va = v_start;
    let mut cur: [Option<u64>; 3] = [None; 3]; // current L3, L2, L1 mfn
    while va < layout.v_end {
        let idx = [
            pte::table_index(va, 4),
            pte::table_index(va, 3),
            pte::table_index(va, 2),
            pte::table_index(va, 1),
        ];
        // A new L3/L2/L1 starts where `va` crosses into a fresh one: all lower indices 0.
        for lvl in 0..3 {
            if cur[lvl].is_some() && idx[lvl + 1..].iter().any(|&i| i != 0) {
                continue;
            }
            let m = pt_mfn(next_pt);
            next_pt += 1;
            let parent = if lvl == 0 { l4 } else { cur[lvl - 1].unwrap() };
            ram.write_u64_phys(parent * PAGE_SIZE + idx[lvl] as u64 * 8, mk_pte(m, LN_PROT));
            cur[lvl] = Some(m);
            cur[lvl + 1..].fill(None);
        }
        let pfn = (va - v_start) >> 12;
        let flags = if is_pt_pfn(pfn) {
            L1_PROT & !pte::_PAGE_RW
        } else {
            L1_PROT
        };
        ram.write_u64_phys(
            cur[2].unwrap() * PAGE_SIZE + idx[3] as u64 * 8,
            mk_pte(p2m[pfn as usize], flags),
        );
        va += PAGE_SIZE;
    }
    debug_assert!(
        next_pt <= layout.nr_pt_frames,
        "layout reserved enough table frames"
    );

    // start_info.
    let mut si = [0u8; so::SIZE];
    let put = |b: &mut [u8], off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
    put(&mut si, so::MAGIC, abi::START_INFO_MAGIC);
    put(&mut si, so::NR_PAGES, &nr_pages.to_le_bytes());
    let mut flags = sif::PRIVILEGED | sif::INITDOMAIN;
    if let Some(i) = initrd {
        // Xen: `mod_start = vinitrd_start ?: initrd_pfn`, SIF_MOD_START_PFN for the pfn form.
        let mod_start = i.va.unwrap_or(i.pfn);
        flags |= if i.va.is_none() {
            sif::MOD_START_PFN
        } else {
            0
        };
        put(&mut si, so::MOD_START, &mod_start.to_le_bytes());
        put(&mut si, so::MOD_LEN, &i.len.to_le_bytes());
    }
    put(&mut si, so::FLAGS, &flags.to_le_bytes());
    put(
        &mut si,
        so::SHARED_INFO,
        &(xen.shared_info_mfn() * PAGE_SIZE).to_le_bytes(),
    );
    put(&mut si, so::PT_BASE, &layout.pt.0.to_le_bytes());
    put(
        &mut si,
        so::NR_PT_FRAMES,
        &layout.nr_pt_frames.to_le_bytes(),
    );
    put(&mut si, so::MFN_LIST, &layout.p2m.0.to_le_bytes());
    let cmd = cfg.cmdline.as_bytes();
    let n = cmd.len().min(abi::MAX_GUEST_CMDLINE - 1);
    put(&mut si, so::CMD_LINE, &cmd[..n]);
    w.write(layout.start_info, &si);

    // Hypercall page (kernels without the note make hypercalls with `syscall`).
    if let Some(hp) = x.hypercall_page {
        w.write(hp, &hypercall_page());
    }
    xen_area::build(&xen, &ram, &m2p).map_err(BuildError::XenArea)?;

    Ok(Domain {
        ram,
        m2p,
        entry: x.entry,
        l4_mfn: l4,
        hypercall_page: x.hypercall_page,
        xen,
        cmdline_truncated: n < cmd.len(),
        layout,
        initrd,
    })
}

impl Domain {
    /// Named address ranges for provenance: the builder's regions first, then Linux's layout.
    pub fn regions(&self, kernel_end: u64) -> Vec<Region> {
        let l = &self.layout;
        let r = |name: &str, start: u64, end_excl: u64| Region {
            name: name.to_string(),
            start,
            end: end_excl.wrapping_sub(1),
        };
        vec![
            r("kernel image", l.kernel.0, kernel_end),
            r("p2m table", l.p2m.0, l.p2m.1),
            r("start_info", l.start_info, l.start_info + PAGE_SIZE),
            r("bootstrap page tables", l.pt.0, l.pt.1),
            r("boot stack", l.stack.0, l.stack.1),
            r("initial mapping", l.v_start, l.v_end),
            r(
                "direct map",
                layout::DIRECT_MAP_BASE,
                layout::DIRECT_MAP_END + 1,
            ),
            r(
                "vmalloc/vmap area",
                layout::VMALLOC_BASE,
                layout::VMALLOC_END + 1,
            ),
            r("pkmap", layout::PKMAP_BASE, layout::PKMAP_END + 1),
            r("fixmap", layout::FIXMAP_BASE, layout::FIXMAP_END + 1),
            r("kernel", layout::KERNEL_BASE, 0),
            r("user", 0, layout::USER_END + 1),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

#[cfg(test)]
mod fuzz {
    use super::*;

    const BASE: u64 = 0xffff_ffff_8000_0000;

    /// A minimal valid Xen PV ELF: one PT_LOAD (code page + hypercall page + bss), one PT_NOTE.
    pub(super) fn mini_kernel() -> Vec<u8> {
        let mut f = vec![0u8; 0x3000];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // 64-bit
        f[5] = 1; // little-endian
        f[6] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        f[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86_64
        f[24..32].copy_from_slice(&(BASE + 0x20_0000).to_le_bytes()); // entry
        f[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph =
            |f: &mut Vec<u8>, at: usize, ty: u32, off: u64, va: u64, filesz: u64, memsz: u64| {
                f[at..at + 4].copy_from_slice(&ty.to_le_bytes());
                f[at + 8..at + 16].copy_from_slice(&off.to_le_bytes());
                f[at + 16..at + 24].copy_from_slice(&va.to_le_bytes());
                f[at + 24..at + 32].copy_from_slice(&va.to_le_bytes());
                f[at + 32..at + 40].copy_from_slice(&filesz.to_le_bytes());
                f[at + 40..at + 48].copy_from_slice(&memsz.to_le_bytes());
            };
        let mut notes = Vec::new();
        let mut note = |ty: u32, desc: &[u8]| {
            notes.extend_from_slice(&4u32.to_le_bytes());
            notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
            notes.extend_from_slice(&ty.to_le_bytes());
            notes.extend_from_slice(b"Xen\0");
            notes.extend_from_slice(desc);
            while notes.len() % 4 != 0 {
                notes.push(0);
            }
        };
        note(6, b"linux\0");
        note(5, b"xen-3.0\0");
        note(3, &BASE.to_le_bytes());
        note(4, &BASE.to_le_bytes());
        note(2, &(BASE + 0x20_1000).to_le_bytes());
        f[0x100..0x100 + notes.len()].copy_from_slice(&notes);
        ph(&mut f, 64, 1, 0x1000, BASE + 0x20_0000, 0x2000, 0x3000);
        ph(
            &mut f,
            120,
            4,
            0x100,
            0,
            notes.len() as u64,
            notes.len() as u64,
        );
        f
    }

    #[test]
    fn mini_kernel_builds() {
        let k = mini_kernel();
        let img = KernelImage::parse(&k).unwrap();
        assert_eq!(img.xen.hypercall_page, Some(BASE + 0x20_1000));
        let cfg = BuildConfig {
            mem_mib: 8,
            cmdline: "x",
            p2m: P2mMode::Identity,
            initrd: None,
        };
        let d = build(&img, &cfg).unwrap();
        assert_eq!(d.layout.v_end, BASE + 0x40_0000);
        // The bootstrap tables map every pagetable frame read-only and the rest RW.
        let walk = |va: u64| d.ram.translate(d.l4_mfn << 12, va, true);
        assert!(walk(d.layout.pt.0).is_err());
        assert!(walk(d.layout.stack.0).is_ok());
        assert!(walk(d.layout.v_end - 4096).is_ok());
        assert!(walk(d.layout.v_end).is_err());
        // Too little memory is an error, not a panic.
        let small = BuildConfig { mem_mib: 2, ..cfg };
        assert!(matches!(
            build(&img, &small),
            Err(BuildError::TooLittleMemory { .. })
        ));
    }

    /// Random corruption of header, program headers and notes never panics the parser or builder.
    #[test]
    fn corrupted_kernels_never_panic() {
        let good = mini_kernel();
        let mut seed = 0x1234_5678u64;
        for _ in 0..3000 {
            let mut k = good.clone();
            let n = 1 + splitmix64(&mut seed) % 4;
            for _ in 0..n {
                let at = (splitmix64(&mut seed) % 0x1a0) as usize; // headers and notes
                k[at] = splitmix64(&mut seed) as u8;
            }
            if splitmix64(&mut seed).is_multiple_of(8) {
                k.truncate((splitmix64(&mut seed) % 0x3000) as usize);
            }
            if let Ok(img) = KernelImage::parse(&k) {
                let cfg = BuildConfig {
                    mem_mib: 8,
                    cmdline: "",
                    p2m: P2mMode::Shuffle { seed: 1 },
                    initrd: None,
                };
                let _ = build(&img, &cfg);
            }
        }
    }
}

#[cfg(test)]
mod initrd_tests {
    use super::*;

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
}
