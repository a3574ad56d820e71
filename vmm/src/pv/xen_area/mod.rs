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
//!
//! This file holds the layout ([`XenLayout`]: where each piece is, computed from the RAM size
//! alone) and the ports; `build.rs` writes the area (page tables, GDT, IDT, TSS), `stubs.rs`
//! assembles its ring-0 code.

mod build;
mod stubs;
#[cfg(test)]
mod tests;

pub use build::{build, has_error_code};

use crate::memory::GuestRam;
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

    /// What replay needs of the Xen area (the domain record's `"xen"`): the L4 entries
    /// validation installs, the read-only M2P entry, and the frame Xen shares from the start.
    pub fn replay_record(&self) -> crate::log_record::XenAreaRecord {
        crate::log_record::XenAreaRecord {
            l4_slots: self.l4_slots().to_vec(),
            ro_mpt: self.ro_mpt_l4e(),
            shared: vec![self.shared_info_mfn()],
        }
    }
}

fn gdt_zero_flags() -> u64 {
    pte::_PAGE_PRESENT | pte::_PAGE_ACCESSED | pte::_PAGE_NX
}
