//! Memory management (Linux: mm/ and arch/x86/xen/mmu_pv.c).
//!
//! The guest works in pseudo-physical frames ([`Pfn`]) and writes machine frames ([`Mfn`])
//! into page tables, translating through the P2M. Keeping the two as distinct types is the
//! guest's defence against the classic pfn/mfn mix-up (the VMM's `--p2m shuffle` hunts it).
//!
//! * [`p2m`]: `pfn_to_mfn` over `start_info.mfn_list`, and the reverse map `mfn_to_pfn`.
//! * [`memblock`]: early allocations from the free pages of the bootstrap region, which the
//!   domain builder already mapped read-write at `KERNEL_BASE + pfn * 4096`.
//! * [`page_alloc`]: the page allocator over the pfns above the bootstrap region.
//! * [`fixmap`]: fixed virtual slots (one L1) for temporarily mapping any frame.
//! * [`pgtable`]: pinning, unpinning and validated PTE writes, and the bootstrap walk.

pub mod directmap;
pub mod fixmap;
pub mod highmem;
pub mod memblock;
pub mod p2m;
pub mod page_alloc;
pub mod pgalloc;
pub mod pgtable;
pub mod vmalloc;

use pagetable_validator::pte::{layout::KERNEL_BASE, PAGE_SHIFT, PAGE_SIZE};

/// Frame numbers: the pseudo-physical `Pfn` (the guest's own view of its memory) and the
/// machine `Mfn` (what page-table entries and hypercalls name), shared with the hypervisor.
pub use pagetable_validator::frame::{Mfn, Pfn};

/// Virtual address of `pfn` in the bootstrap mapping (`KERNEL_BASE + pfn * 4096`).
///
/// The Xen PV ABI (xen.h, "start of day memory layout") maps the bootstrap region 1:1 onto the
/// first pfns, starting at the ELF's VIRT_BASE. Only valid for pfns inside that region (see
/// [`crate::setup::BootLayout`]); the page tables there are mapped read-only.
pub const fn boot_va(pfn: Pfn) -> u64 {
    KERNEL_BASE + (pfn.0 << PAGE_SHIFT)
}

/// The pfn behind a bootstrap-region virtual address (inverse of [`boot_va`]).
pub const fn boot_pfn(va: u64) -> Pfn {
    Pfn((va - KERNEL_BASE) >> PAGE_SHIFT)
}
