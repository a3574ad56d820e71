//! Placing the initrd (`--initrd`) as Xen 4.17 places dom0's first module: mapped after the
//! kernel, or by pfn after the first allocation for a kernel with XEN_ELFNOTE_MOD_START_PFN.

use super::{BuildError, Layout, MIB};
use pagetable_validator::pte::PAGE_SIZE;

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
