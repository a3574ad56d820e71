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
use pagetable_validator::abi::{self, sif, start_info_offset as so};
use pagetable_validator::pte::{self, layout, mk_pte, PAGE_SIZE};
use pagetable_validator::Region;
use thiserror::Error;

/// Port the hypercall stubs write the hypercall number to.
pub const HYPERCALL_PORT: u16 = 0xec;
/// GDT selectors of the flat GDT the builder places in the hypercall page.
pub const KERNEL_CS: u16 = 0x08;
pub const KERNEL_DS: u16 = 0x10;

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

/// A built domain: its memory, P2M, and the initial register values.
pub struct Domain {
    pub ram: GuestRam,
    /// mfn -> pfn.
    pub m2p: Vec<u64>,
    pub layout: Layout,
    pub entry: u64,
    pub l4_mfn: u64,
    pub hypercall_page: Option<u64>,
    /// Linear address and limit of the flat GDT (inside the hypercall page), if any.
    pub gdt: Option<(u64, u16)>,
    pub cmdline_truncated: bool,
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

/// Computes the layout exactly like Xen's loop over `nr_pt_pages`.
fn compute_layout(kstart: u64, kend: u64, v_start: u64, nr_pages: u64) -> Option<Layout> {
    let p2m_start = round_up(kend, PAGE_SIZE)?;
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

/// Offset in the hypercall page of the flush tail every stub jumps to: the spare second half
/// of slot 0.
const FLUSH_TAIL: usize = 16;

/// The flush tail: `test r11, r11; jz 2f; js 1f; mov cr3, rcx; 2: ret; 1: invlpg [rcx]; ret`.
/// After serving a hypercall the VMM sets r11 = 0 (nothing to flush), r11 > 0 with rcx = the
/// CR3 to load (full flush, or a new base pointer), or r11 < 0 with rcx = a VA to `invlpg`
/// (see tlb.rs). The guest cannot flush itself: both instructions are privileged.
const FLUSH_TAIL_CODE: [u8; 15] = [
    0x4d, 0x85, 0xdb, // test r11, r11
    0x74, 0x05, // jz ret (+5)
    0x78, 0x04, // js invlpg (+4)
    0x0f, 0x22, 0xd9, // mov cr3, rcx
    0xc3, // ret
    0x0f, 0x01, 0x39, // invlpg [rcx]
    0xc3, // ret
];

/// Offset in the hypercall page of the continuation tail: the spare half of slot 1 (its stub
/// ends at 44; 46 + 17 = 63 stays inside the slot).
pub const CONTINUATION_TAIL: u64 = 46;

/// The continuation tail: the flush tail, but it ends in `jmp rax` instead of `ret`. When the VMM
/// preempts a long batch (a Xen hypercall continuation, see hypercall/mod.rs) it sets rax = the
/// stub to re-enter and r11/rcx as for the flush tail, so a flush the served part needs (a new
/// CR3 from `NEW_BASEPTR`, a stale TLB) happens before the guest re-enters the hypercall.
const CONTINUATION_TAIL_CODE: [u8; 17] = [
    0x4d, 0x85, 0xdb, // test r11, r11
    0x74, 0x0a, // jz reenter (+10)
    0x78, 0x05, // js invlpg (+5)
    0x0f, 0x22, 0xd9, // mov cr3, rcx
    0xff, 0xe0, // jmp rax
    0x0f, 0x01, 0x39, // invlpg [rcx]
    0xff, 0xe0, // reenter: jmp rax
];

/// The stub of hypercall `nr` (at `nr * 32` in the page): `mov eax, nr; out PORT, eax;
/// jmp FLUSH_TAIL`. Every path from an `out` goes through the tail, so no stub can skip a
/// flush the VMM asked for.
pub fn hypercall_stub(nr: u32) -> [u8; 12] {
    let n = nr.to_le_bytes();
    let next = nr as i64 * abi::hypercall::STUB_SIZE as i64 + 12;
    let rel = ((FLUSH_TAIL as i64 - next) as i32).to_le_bytes();
    [
        0xb8,
        n[0],
        n[1],
        n[2],
        n[3], // mov eax, nr
        0xe7,
        HYPERCALL_PORT as u8, // out PORT, eax
        0xe9,
        rel[0],
        rel[1],
        rel[2],
        rel[3], // jmp rel32 FLUSH_TAIL
    ]
}

/// The hypercall page: 128 stubs of 32 bytes, the flush tail in the spare half of slot 0, and
/// the two descriptors of a flat GDT in the spare half of the last slot (its unused null
/// descriptor overlaps the stub's padding).
fn hypercall_page() -> ([u8; 4096], u64) {
    let mut page = [0xccu8; 4096]; // int3 padding
    for nr in 0..abi::hypercall::NR_STUBS {
        let off = (nr * abi::hypercall::STUB_SIZE) as usize;
        page[off..off + 12].copy_from_slice(&hypercall_stub(nr as u32));
    }
    page[FLUSH_TAIL..FLUSH_TAIL + FLUSH_TAIL_CODE.len()].copy_from_slice(&FLUSH_TAIL_CODE);
    let ct = CONTINUATION_TAIL as usize;
    page[ct..ct + CONTINUATION_TAIL_CODE.len()].copy_from_slice(&CONTINUATION_TAIL_CODE);
    let gdt_off = 127 * 32 + 8;
    let code64: u64 = 0x00af_9b00_0000_ffff;
    let data: u64 = 0x00cf_9300_0000_ffff;
    page[gdt_off + 8..gdt_off + 16].copy_from_slice(&code64.to_le_bytes());
    page[gdt_off + 16..gdt_off + 24].copy_from_slice(&data.to_le_bytes());
    (page, gdt_off as u64)
}

pub struct BuildConfig<'a> {
    pub mem_mib: u64,
    pub cmdline: &'a str,
    pub p2m: P2mMode,
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
}

pub fn build(img: &KernelImage, cfg: &BuildConfig) -> Result<Domain, BuildError> {
    let ram = crate::memory::GuestRam::new(cfg.mem_mib)?;
    let nr_pages = ram.size() / PAGE_SIZE;
    let x = &img.xen;
    let v_start = x.virt_base;
    let kend = round_up(x.virt_kend, PAGE_SIZE).ok_or(BuildError::AddressOverflow(v_start))?;
    let layout = compute_layout(x.virt_kstart, kend, v_start, nr_pages)
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
    put(
        &mut si,
        so::FLAGS,
        &(sif::PRIVILEGED | sif::INITDOMAIN).to_le_bytes(),
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

    // Hypercall page and the GDT inside it.
    let mut gdt = None;
    if let Some(hp) = x.hypercall_page {
        let (page, gdt_off) = hypercall_page();
        w.write(hp, &page);
        gdt = Some((hp + gdt_off, 23));
    }

    Ok(Domain {
        ram,
        m2p,
        entry: x.entry,
        l4_mfn: l4,
        hypercall_page: x.hypercall_page,
        gdt,
        cmdline_truncated: n < cmd.len(),
        layout,
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
        let l = compute_layout(base + 0x20_0000, base + 0x20_d000, base, 16384).unwrap();
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
        assert_eq!(&s[..7], &[0xb8, 26, 0, 0, 0, 0xe7, HYPERCALL_PORT as u8]);
        // jmp rel32 from the end of slot 26's stub lands on the flush tail.
        assert_eq!(s[7], 0xe9);
        let rel = i32::from_le_bytes(s[8..12].try_into().unwrap()) as i64;
        assert_eq!(26 * 32 + 12 + rel, FLUSH_TAIL as i64);
        let (page, gdt) = hypercall_page();
        assert_eq!(&page[FLUSH_TAIL..FLUSH_TAIL + 15], &FLUSH_TAIL_CODE);
        // The tail ends before slot 1; the GDT's descriptors do not overlap slot 127's stub.
        const { assert!(FLUSH_TAIL + 15 <= 32) };
        assert!(gdt as usize + 8 >= 127 * 32 + 12);
    }

    #[test]
    fn continuation_tail_sits_in_slot_1_and_its_jumps_land_right() {
        let (page, _) = hypercall_page();
        let ct = CONTINUATION_TAIL as usize;
        let code = &page[ct..ct + CONTINUATION_TAIL_CODE.len()];
        assert_eq!(code, &CONTINUATION_TAIL_CODE);
        // After slot 1's stub (32..44), before slot 2.
        assert!(ct >= 32 + 12 && ct + code.len() <= 64);
        assert_eq!(&page[32..44], &hypercall_stub(1));
        // jz (rel8 at 4, next insn at 5) lands on the final `jmp rax`; js on `invlpg [rcx]`.
        let jz = 5 + code[4] as usize;
        let js = 7 + code[6] as usize;
        assert_eq!((code[3], &code[jz..jz + 2]), (0x74, &[0xff, 0xe0][..]));
        assert_eq!(
            (code[5], &code[js..js + 3]),
            (0x78, &[0x0f, 0x01, 0x39][..])
        );
        assert_eq!(jz + 2, code.len());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;

    const BASE: u64 = 0xffff_ffff_8000_0000;

    /// A minimal valid Xen PV ELF: one PT_LOAD (code page + hypercall page + bss), one PT_NOTE.
    fn mini_kernel() -> Vec<u8> {
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
                };
                let _ = build(&img, &cfg);
            }
        }
    }
}
