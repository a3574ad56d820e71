//! The Xen area: VMM-owned frames outside guest RAM, mapped supervisor-only through the
//! hypervisor L4 slots (256..=271) that the validator installs in every L4 it validates, as
//! Xen's `init_xen_l4_slots` does. Layout (Xen's own slots where Xen has them):
//!
//! | slot | VA                  | contents                                                 |
//! |------|---------------------|----------------------------------------------------------|
//! | 256  | 0xffff800000000000  | the read-only M2P (`machine_to_phys_mapping`), user-readable |
//! | 260  | 0xffff820000000000  | per-domain: GDT, IDT, TSS, entry stubs, sync queue, stack |
//! | 262  | 0xffff830000000000  | supervisor direct map of all guest-physical memory (2 MiB) |
//!
//! The ring-0 code is minimal: each stub exits with one `out`. A vector stub's port names its
//! vector, and the CPU's frame stays on the TSS stack for the VMM to read; the
//! SYSCALL/SYSENTER entry points exit; the *sync trampoline* re-stores the pagetable entries
//! the VMM changed from userspace, then flushes, then exits. On hosts that shadow guest page
//! tables (no EPT/NPT, such as this project's kvm-pvm machines) a store made from userspace is
//! invisible to the shadow tables until guest code at CPL 0 makes it again (KVM traps that
//! write and updates the shadow); on EPT hosts the re-store is harmless and the flush is what
//! matters. So every validated store reaches the hardware through ring 0, as on Xen.
//!
//! Everything here is built once, before the vCPU first runs; afterwards only data pages
//! change (GDT copies, the M2P, the sync queue), never the area's own page tables.

use crate::memory::GuestRam;
use iced_x86::code_asm::*;
use pagetable_validator::abi::x86 as xen;
use pagetable_validator::pte::{self, PAGE_SIZE};
use pagetable_validator::XEN_L4_SLOTS;
use thiserror::Error;

/// Ports of the ring-0 stubs' `out`. On this host SYSCALL may enter LSTAR without leaving
/// CPL 3 (see `build`), so the SYSCALL/SYSENTER stubs' ports are open in the TSS I/O bitmap; a
/// guest may `out` to them itself, and the VMM accepts a stub exit only with RIP inside the
/// stubs' code. The vector stubs and the trampoline always run at CPL 0.
pub mod port {
    /// Vector stubs: 0x80 + vector for the 32 exceptions, 0xa0 for any other vector.
    pub const VECTOR_BASE: u16 = 0x80;
    pub const VECTOR_OTHER: u16 = 0xa0;
    pub const fn vector(v: u8) -> u16 {
        if v < 32 {
            VECTOR_BASE + v as u16
        } else {
            VECTOR_OTHER
        }
    }
    pub const EXCEPTION: u16 = 0xe0;
    pub const SYSCALL: u16 = 0xe1;
    pub const SYSCALL32: u16 = 0xe2;
    pub const SYSENTER: u16 = 0xe3;
    pub const SYNC_DONE: u16 = 0xe4;
}

/// Second mapping of the read-only M2P: this project's kvm-pvm hosts keep L4 slot 256 for
/// themselves (guest accesses there fault although our tables map the M2P), so the VMM also
/// maps it here and `XENMEM_machphys_mapping` names this address (guests that take the
/// M2P's address from Xen, as Linux does, then run at full speed; fixed-address readers of
/// slot 256 still work through read emulation).
const SLOT_M2P_ALIAS: usize = 257;
const SLOT_PERDOMAIN: usize = 260;
const SLOT_DIRECTMAP: usize = 262;

const fn slot_va(slot: usize) -> u64 {
    0xffff_0000_0000_0000 | ((slot as u64) << 39)
}

/// Per-domain area, page by page.
const PD_GDT: u64 = 0; // 15 pages: 14 guest frames + Xen's reserved page
const PD_GDT_PAGES: u64 = xen::FIRST_RESERVED_GDT_PAGE + 1;
const PD_IDT: u64 = PD_GDT + PD_GDT_PAGES;
const PD_TSS: u64 = PD_IDT + 1; // 104 bytes + 8 KiB I/O bitmap + the trailing 0xff byte
const PD_TSS_PAGES: u64 = 3;
const PD_VECTORS: u64 = PD_TSS + PD_TSS_PAGES; // 256 IDT stubs of 16 bytes
const PD_ENTRY: u64 = PD_VECTORS + 1; // SYSCALL/SYSENTER stubs and the sync trampoline
const PD_QUEUE: u64 = PD_ENTRY + 1;
const PD_QUEUE_PAGES: u64 = 4;
const PD_STACK: u64 = PD_QUEUE + PD_QUEUE_PAGES;
const PD_STACK_PAGES: u64 = 2;
/// The shared_info page: a Xen frame the guest maps by its machine address.
const PD_SHARED_INFO: u64 = PD_STACK + PD_STACK_PAGES;
/// A zero page: what the GDT's unused guest pages map (Xen's `zero_page`), read-only.
const PD_ZERO: u64 = PD_SHARED_INFO + 1;
const PD_PAGES: u64 = PD_ZERO + 1;

/// Grant-table frames (Xen's `gt->shared_raw` and `gt->status`, xenheap pages shared with the
/// guest): as many as Xen 4.17 lets a domain have by default (`gnttab_max_frames` = 64, and
/// `grant_to_status_frames(64)` = 8 status frames), reserved up front so the table grows
/// without allocation. They follow the direct map's tables and are mapped nowhere by the VMM;
/// the guest maps them itself once they are shared (see hypercall/grant_table.rs).
pub const GNTTAB_MAX_FRAMES: u64 = 64;
pub const GNTTAB_MAX_STATUS_FRAMES: u64 = GNTTAB_MAX_FRAMES.div_ceil(8);

/// Offsets in the entry page.
const ENTRY_SYSCALL: u64 = 0;
const ENTRY_SYSCALL32: u64 = 16;
const ENTRY_SYSENTER: u64 = 32;
const ENTRY_SYNC: u64 = 64;

/// Size of the TSS's fixed part; the I/O bitmap follows it.
const TSS_SIZE: u64 = 104;
/// TSS limit: the fixed part, 65536 bitmap bits, and the 0xff byte the CPU may read past it.
pub const TSS_LIMIT: u32 = (TSS_SIZE + 8192) as u32;

/// Entries the sync queue holds (one guest-physical address each).
pub const SYNC_QUEUE_CAP: usize = (PD_QUEUE_PAGES * PAGE_SIZE / 8) as usize;

/// What the sync trampoline flushes after its stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncFlush {
    None = 0,
    /// `invlpg [va]`.
    Page = 1,
    /// Reload CR3.
    Full = 2,
}

const HYP_RW: u64 = pte::_PAGE_PRESENT | pte::_PAGE_RW | pte::_PAGE_ACCESSED | pte::_PAGE_DIRTY;
const HYP_RO_USER: u64 = pte::_PAGE_PRESENT | pte::_PAGE_USER | pte::_PAGE_ACCESSED;

#[derive(Debug, Error)]
pub enum XenAreaError {
    #[error("assembling the Xen area's ring-0 stubs failed: {0}")]
    Asm(String),
    #[error("guest memory of {0} frames needs a larger M2P than the Xen area maps")]
    TooLarge(u64),
}

/// Where the Xen area's pieces are: computed from the guest's RAM size alone, so the memory
/// can be allocated before anything is written.
#[derive(Clone, Debug)]
pub struct XenLayout {
    /// First frame of the area (guest-physical), right after RAM (2 MiB aligned).
    pub base_frame: u64,
    pub nr_frames: u64,
    /// Frames of the M2P data (covering every guest-physical frame, RAM and area).
    m2p_frames: u64,
    m2p_l1s: u64,
    dm_l2s: u64,
}

impl XenLayout {
    pub fn new(ram_frames: u64) -> Result<Self, XenAreaError> {
        let base_frame = ram_frames.div_ceil(512) * 512;
        // The sizes depend on each other only through the direct map's and M2P's reach:
        // two rounds settle them.
        let mut total = base_frame + 64;
        let mut l = None;
        for _ in 0..3 {
            let m2p_frames = (total * 8).div_ceil(PAGE_SIZE);
            let m2p_l1s = m2p_frames.div_ceil(512);
            if m2p_l1s > 512 {
                return Err(XenAreaError::TooLarge(ram_frames));
            }
            let dm_l2s = total.div_ceil(512 * 512);
            if dm_l2s > 512 {
                return Err(XenAreaError::TooLarge(ram_frames));
            }
            let nr_frames = 2
                + m2p_l1s
                + m2p_frames
                + 3
                + PD_PAGES
                + 1
                + dm_l2s
                + GNTTAB_MAX_FRAMES
                + GNTTAB_MAX_STATUS_FRAMES;
            total = base_frame + nr_frames;
            l = Some(XenLayout {
                base_frame,
                nr_frames,
                m2p_frames,
                m2p_l1s,
                dm_l2s,
            });
        }
        let l = l.expect("the loop ran");
        debug_assert!(l.base_frame + l.nr_frames <= total);
        Ok(l)
    }

    /// Frame (guest-physical) of each piece, in allocation order.
    fn m2p_l3(&self) -> u64 {
        self.base_frame
    }
    fn m2p_l2(&self) -> u64 {
        self.base_frame + 1
    }
    fn m2p_l1(&self, i: u64) -> u64 {
        self.base_frame + 2 + i
    }
    fn m2p_data(&self, i: u64) -> u64 {
        self.base_frame + 2 + self.m2p_l1s + i
    }
    fn pd_l3(&self) -> u64 {
        self.m2p_data(self.m2p_frames)
    }
    fn pd_l2(&self) -> u64 {
        self.pd_l3() + 1
    }
    fn pd_l1(&self) -> u64 {
        self.pd_l3() + 2
    }
    fn pd_page(&self, i: u64) -> u64 {
        self.pd_l3() + 3 + i
    }
    fn dm_l3(&self) -> u64 {
        self.pd_page(PD_PAGES)
    }
    fn dm_l2(&self, i: u64) -> u64 {
        self.dm_l3() + 1 + i
    }
    fn gnttab_first(&self) -> u64 {
        self.dm_l2(self.dm_l2s)
    }
    fn end_frame(&self) -> u64 {
        self.gnttab_first() + GNTTAB_MAX_FRAMES + GNTTAB_MAX_STATUS_FRAMES
    }

    /// Machine frame of grant-table shared frame `i` (< [`GNTTAB_MAX_FRAMES`]).
    pub fn gnttab_shared_mfn(&self, i: u64) -> u64 {
        debug_assert!(i < GNTTAB_MAX_FRAMES);
        self.gnttab_first() + i
    }
    /// Machine frame of grant-table status frame `i` (< [`GNTTAB_MAX_STATUS_FRAMES`]).
    pub fn gnttab_status_mfn(&self, i: u64) -> u64 {
        debug_assert!(i < GNTTAB_MAX_STATUS_FRAMES);
        self.gnttab_first() + GNTTAB_MAX_FRAMES + i
    }

    fn pd_va(page: u64) -> u64 {
        slot_va(SLOT_PERDOMAIN) + page * PAGE_SIZE
    }

    pub fn gdt_va(&self) -> u64 {
        Self::pd_va(PD_GDT)
    }
    pub fn idt_va(&self) -> u64 {
        Self::pd_va(PD_IDT)
    }
    pub fn tss_va(&self) -> u64 {
        Self::pd_va(PD_TSS)
    }
    pub fn syscall_entry(&self) -> u64 {
        Self::pd_va(PD_ENTRY) + ENTRY_SYSCALL
    }
    pub fn syscall32_entry(&self) -> u64 {
        Self::pd_va(PD_ENTRY) + ENTRY_SYSCALL32
    }
    pub fn sysenter_entry(&self) -> u64 {
        Self::pd_va(PD_ENTRY) + ENTRY_SYSENTER
    }
    /// Entry of vector `v`'s stub (what its IDT gate points at).
    pub fn vector_stub(&self, v: u8) -> u64 {
        Self::pd_va(PD_VECTORS) + u64::from(v) * 16
    }
    /// Whether `rip` lies in the ring-0 stubs' code (vector stubs and entry page).
    pub fn is_stub_rip(&self, rip: u64) -> bool {
        (Self::pd_va(PD_VECTORS)..Self::pd_va(PD_ENTRY + 1)).contains(&rip)
    }
    pub fn sync_entry(&self) -> u64 {
        Self::pd_va(PD_ENTRY) + ENTRY_SYNC
    }
    pub fn queue_va(&self) -> u64 {
        Self::pd_va(PD_QUEUE)
    }
    /// Top of the ring-0 stack (TSS `rsp0`).
    pub fn stack_top(&self) -> u64 {
        Self::pd_va(PD_STACK + PD_STACK_PAGES)
    }
    /// Guest-physical address of a VA in the per-domain area (for the VMM's own reads).
    pub fn pd_gpa(&self, va: u64) -> Option<u64> {
        let off = va.checked_sub(Self::pd_va(0))?;
        (off < PD_PAGES * PAGE_SIZE)
            .then(|| (self.pd_page(off / PAGE_SIZE) << 12) | (off & (PAGE_SIZE - 1)))
    }
    /// Guest-physical address of GDT byte `off`.
    pub fn gdt_gpa(&self, off: u64) -> u64 {
        (self.pd_page(PD_GDT + off / PAGE_SIZE) << 12) | (off & (PAGE_SIZE - 1))
    }
    /// Guest-physical address of the per-domain L1 entry that maps GDT page `page` (< 14).
    pub fn gdt_pte_gpa(&self, page: u64) -> u64 {
        (self.pd_l1() << 12) + (PD_GDT + page) * 8
    }
    /// The per-domain L1 entry mapping guest GDT frame `mfn` (or, for `None`, the zero page).
    pub fn gdt_pte(&self, mfn: Option<u64>) -> u64 {
        match mfn {
            Some(m) => pte::mk_pte(m, HYP_RW | pte::_PAGE_NX),
            None => pte::mk_pte(self.pd_page(PD_ZERO), gdt_zero_flags()),
        }
    }
    /// The shared_info frame (a machine frame outside RAM that the guest maps).
    pub fn shared_info_mfn(&self) -> u64 {
        self.pd_page(PD_SHARED_INFO)
    }
    /// Guest-physical address of the M2P entry of `mfn`.
    pub fn m2p_gpa(&self, mfn: u64) -> u64 {
        (self.m2p_data(0) << 12) + mfn * 8
    }
    /// Number of mfns the M2P covers.
    pub fn m2p_entries(&self) -> u64 {
        self.m2p_frames * PAGE_SIZE / 8
    }
    /// Xen's `max_page`: one past the last machine frame of the host (RAM and this area).
    pub fn max_page(&self) -> u64 {
        self.end_frame()
    }
    /// The frame holding M2P entries `chunk * 256K ..` (what `XENMEM_machphys_mfn_list`
    /// reports per 2 MiB of M2P), `None` past the M2P's frames.
    pub fn m2p_chunk_mfn(&self, chunk: u64) -> Option<u64> {
        let page = chunk.checked_mul(512)?;
        (page < self.m2p_frames).then(|| self.m2p_data(page))
    }
    /// Sets the guest-visible M2P entry of `mfn` (Xen's `set_gpfn_from_mfn`); `false` if
    /// the M2P does not cover `mfn`.
    pub fn set_m2p(&self, ram: &GuestRam, mfn: u64, pfn: u64) -> bool {
        mfn < self.m2p_entries() && ram.write_u64_phys(self.m2p_gpa(mfn), pfn)
    }
    /// Where `XENMEM_machphys_mapping` says the M2P is (its alias; see `SLOT_M2P_ALIAS`).
    pub fn m2p_alias_va(&self) -> u64 {
        slot_va(SLOT_M2P_ALIAS)
    }
    /// VA of guest-physical `gpa` in the supervisor direct map.
    pub fn directmap_va(gpa: u64) -> u64 {
        slot_va(SLOT_DIRECTMAP) + gpa
    }

    /// The L4 entry of the read-only M2P (slot 256). As in Xen it is not part of what
    /// validation installs (`init_xen_l4_slots` with `ro_mpt` = m2p_strict, off by default) but
    /// filled in when an L4 becomes the kernel's base (`fill_ro_mpt`).
    pub fn ro_mpt_l4e(&self) -> u64 {
        pte::mk_pte(self.m2p_l3(), HYP_RO_USER)
    }

    /// The 16 hypervisor L4 entries every validated L4 gets (slot 256 empty, see
    /// [`XenLayout::ro_mpt_l4e`]).
    pub fn l4_slots(&self) -> [u64; XEN_L4_SLOTS] {
        let mut s = [0u64; XEN_L4_SLOTS];
        let first = pagetable_validator::abi::ROOT_PAGETABLE_FIRST_XEN_SLOT;
        s[SLOT_M2P_ALIAS - first] = self.ro_mpt_l4e();
        s[SLOT_PERDOMAIN - first] = pte::mk_pte(self.pd_l3(), HYP_RW | pte::_PAGE_USER);
        s[SLOT_DIRECTMAP - first] = pte::mk_pte(self.dm_l3(), HYP_RW);
        s
    }
}

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

fn gdt_zero_flags() -> u64 {
    pte::_PAGE_PRESENT | pte::_PAGE_ACCESSED | pte::_PAGE_NX
}

/// A 16-byte system descriptor (TSS: type 0x9 available, 0xb busy).
fn system_descriptor(base: u64, limit: u32, ty: u64) -> (u64, u64) {
    let lo = u64::from(limit & 0xffff)
        | ((base & 0xff_ffff) << 16)
        | (ty << 40)
        | (1 << 47)
        | ((u64::from(limit >> 16) & 0xf) << 48)
        | (((base >> 24) & 0xff) << 56);
    (lo, base >> 32)
}

/// A 64-bit interrupt gate.
fn gate(target: u64, sel: u16, dpl: u64) -> (u64, u64) {
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

/// The assembled ring-0 code.
struct LayoutStubs {
    vectors: Vec<u8>,
    entry: Vec<u8>,
}

impl LayoutStubs {
    fn assemble(l: &XenLayout) -> Result<Self, XenAreaError> {
        let e = |e: IcedError| XenAreaError::Asm(e.to_string());
        let mut vectors = vec![0xccu8; PAGE_SIZE as usize];
        for v in 0..=255u8 {
            let mut a = CodeAssembler::new(64).map_err(e)?;
            a.out(i32::from(port::vector(v)), al).map_err(e)?;
            a.ud2().map_err(e)?;
            let at = l.vector_stub(v);
            let code = a.assemble(at).map_err(e)?;
            assert!(code.len() <= 16, "vector stub fits its slot");
            let off = usize::from(v) * 16;
            vectors[off..off + code.len()].copy_from_slice(&code);
        }

        let entry_va = XenLayout::pd_va(PD_ENTRY);
        let mut entry = vec![0xccu8; PAGE_SIZE as usize];
        for (off, p) in [
            (ENTRY_SYSCALL, port::SYSCALL),
            (ENTRY_SYSCALL32, port::SYSCALL32),
            (ENTRY_SYSENTER, port::SYSENTER),
        ] {
            let mut a = CodeAssembler::new(64).map_err(e)?;
            a.out(i32::from(p), al).map_err(e)?;
            a.ud2().map_err(e)?;
            let code = a.assemble(entry_va + off).map_err(e)?;
            entry[off as usize..off as usize + code.len()].copy_from_slice(&code);
        }
        let code = sync_trampoline(entry_va + ENTRY_SYNC).map_err(e)?;
        let at = ENTRY_SYNC as usize;
        entry[at..at + code.len()].copy_from_slice(&code);
        debug_assert_eq!(l.sync_entry(), entry_va + ENTRY_SYNC);
        Ok(LayoutStubs { vectors, entry })
    }
}

/// The sync trampoline. In: rsi = queue VA, rcx = number of queued direct-map VAs, rdx =
/// [`SyncFlush`], rdi = the VA to `invlpg`. Re-stores each queued entry (`mov rax, [r8];
/// mov [r8], rax`), flushes, and exits with `out SYNC_DONE`.
fn sync_trampoline(ip: u64) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut next = a.create_label();
    let mut flush = a.create_label();
    let mut full = a.create_label();
    let mut done = a.create_label();
    a.test(rcx, rcx)?;
    a.jz(flush)?;
    a.set_label(&mut next)?;
    a.mov(r8, qword_ptr(rsi))?;
    a.mov(rax, qword_ptr(r8))?;
    a.mov(qword_ptr(r8), rax)?;
    a.add(rsi, 8)?;
    a.dec(rcx)?;
    a.jnz(next)?;
    a.set_label(&mut flush)?;
    a.cmp(rdx, SyncFlush::Page as i32)?;
    a.jb(done)?;
    a.ja(full)?;
    a.invlpg(byte_ptr(rdi))?;
    a.jmp(done)?;
    a.set_label(&mut full)?;
    a.mov(rax, cr3)?;
    a.mov(cr3, rax)?;
    a.set_label(&mut done)?;
    a.out(i32::from(port::SYNC_DONE), al)?;
    a.ud2()?;
    a.assemble(ip)
}

#[cfg(test)]
mod tests {
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
}

#[cfg(test)]
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
