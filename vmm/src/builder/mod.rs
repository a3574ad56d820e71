//! The PV domain builder, shaped like Xen's dom0 builder (`xen/arch/x86/pv/dom0_build.c`).
//!
//! Virtual layout from `v_start` = VIRT_BASE, all mapped to pfn `(va - v_start) >> 12`:
//! kernel image, P2M table (`mfn_list`), start_info, bootstrap page tables, one boot-stack
//! page, then padding to a 4 MiB boundary (at least 512 KiB). Everything is mapped with 4 KiB
//! pages; the frames of the page tables are mapped read-only; the L4 is registered (validated +
//! pinned + made current) with the validator. Writes to guest memory go pfn -> mfn through the
//! P2M, which is the identity or a seeded random permutation (`--p2m shuffle`).
//!
//! This file builds the domain ([`build`]): memory, P2M, the bootstrap page tables, start_info,
//! the kernel's segments and the Xen area. The parts it uses: [`guest_layout`] computes the
//! initial mapping's layout (Xen's loop) and the P2M; [`hypercall_page`] assembles the stubs
//! the guest calls; [`initrd`] places the first module as Xen does.

mod guest_layout;
mod hypercall_page;
mod initrd;
#[cfg(test)]
mod tests;

use guest_layout::{compute_layout, make_p2m};
pub use guest_layout::{Layout, P2mMode};
pub(crate) use hypercall_page::hypercall_page;
pub use hypercall_page::{stub_out_offset, HYPERCALL_PORT};
use initrd::place_initrd;
pub use initrd::InitrdPlacement;

use crate::loader::elf::KernelImage;
use crate::memory::GuestRam;
use crate::pv::xen_area::{self, XenAreaError, XenLayout};
use pagetable_validator::abi::{self, sif};
use pagetable_validator::pte::{self, layout, mk_pte, PAGE_SIZE};
use pagetable_validator::Region;
use thiserror::Error;
use vm_memory::ByteValued;

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
    let mut si = abi::StartInfo::zeroed();
    si.magic[..abi::START_INFO_MAGIC.len()].copy_from_slice(abi::START_INFO_MAGIC);
    si.nr_pages = nr_pages;
    si.flags = sif::PRIVILEGED | sif::INITDOMAIN;
    if let Some(i) = initrd {
        // Xen: `mod_start = vinitrd_start ?: initrd_pfn`, SIF_MOD_START_PFN for the pfn form.
        si.mod_start = i.va.unwrap_or(i.pfn);
        if i.va.is_none() {
            si.flags |= sif::MOD_START_PFN;
        }
        si.mod_len = i.len;
    }
    si.shared_info = xen.shared_info_mfn() * PAGE_SIZE;
    si.pt_base = layout.pt.0;
    si.nr_pt_frames = layout.nr_pt_frames;
    si.mfn_list = layout.p2m.0;
    let cmd = cfg.cmdline.as_bytes();
    let n = cmd.len().min(abi::MAX_GUEST_CMDLINE - 1);
    si.cmd_line[..n].copy_from_slice(&cmd[..n]);
    w.write(layout.start_info, si.as_slice());

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
