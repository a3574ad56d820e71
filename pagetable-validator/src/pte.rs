//! x86-64 4-level paging: PTE bits, address helpers, and the virtual-address
//! layout the project's guest follows (Linux x86_64 under Xen PV). `no_std`.

pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Entries per pagetable frame.
pub const ENTRIES: usize = 512;

pub const _PAGE_PRESENT: u64 = 1 << 0;
pub const _PAGE_RW: u64 = 1 << 1;
pub const _PAGE_USER: u64 = 1 << 2;
pub const _PAGE_PWT: u64 = 1 << 3;
pub const _PAGE_PCD: u64 = 1 << 4;
pub const _PAGE_ACCESSED: u64 = 1 << 5;
pub const _PAGE_DIRTY: u64 = 1 << 6;
/// PSE in L2/L3 entries, PAT in L1 entries.
pub const _PAGE_PSE: u64 = 1 << 7;
pub const _PAGE_PAT: u64 = 1 << 7;
pub const _PAGE_GLOBAL: u64 = 1 << 8;
/// Bits 9..11 are available to software (Xen: `_PAGE_AVAIL`).
pub const _PAGE_AVAIL0: u64 = 1 << 9;
pub const _PAGE_AVAIL1: u64 = 1 << 10;
pub const _PAGE_AVAIL2: u64 = 1 << 11;
pub const _PAGE_AVAIL: u64 = _PAGE_AVAIL0 | _PAGE_AVAIL1 | _PAGE_AVAIL2;
pub const _PAGE_NX: u64 = 1 << 63;

/// Physical-address bits of an entry (bits 12..51).
pub const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// Flag bits an entry may carry besides the address: low 12 bits and bits 52..63.
pub const PTE_FLAGS_MASK: u64 = !PTE_ADDR_MASK;

/// Frame number an entry points to.
#[inline]
pub const fn pte_mfn(pte: u64) -> u64 {
    (pte & PTE_ADDR_MASK) >> PAGE_SHIFT
}

/// Flag bits of an entry.
#[inline]
pub const fn pte_flags(pte: u64) -> u64 {
    pte & PTE_FLAGS_MASK
}

/// Builds an entry from a frame number and flags.
#[inline]
pub const fn mk_pte(mfn: u64, flags: u64) -> u64 {
    ((mfn << PAGE_SHIFT) & PTE_ADDR_MASK) | (flags & PTE_FLAGS_MASK)
}

#[inline]
pub const fn pte_present(pte: u64) -> bool {
    pte & _PAGE_PRESENT != 0
}

#[inline]
pub const fn pte_write(pte: u64) -> bool {
    pte & _PAGE_RW != 0
}

/// Index into the table at `level` (1 = L1 … 4 = L4) for a virtual address.
#[inline]
pub const fn table_index(va: u64, level: u32) -> usize {
    ((va >> (PAGE_SHIFT + 9 * (level - 1))) & 0x1ff) as usize
}

/// Sign-extends a 48-bit address to canonical form.
#[inline]
pub const fn canonical(va: u64) -> u64 {
    (((va << 16) as i64) >> 16) as u64
}

/// Whether `va` is canonical (bits 63..47 all equal).
#[inline]
pub const fn is_canonical(va: u64) -> bool {
    canonical(va) == va
}

/// The virtual address mapped by L4/L3/L2/L1 slots `[l4, l3, l2, l1]`.
#[inline]
pub const fn va_of(l4: usize, l3: usize, l2: usize, l1: usize) -> u64 {
    canonical(((l4 as u64) << 39) | ((l3 as u64) << 30) | ((l2 as u64) << 21) | ((l1 as u64) << 12))
}

/// Default flags for a kernel RW data mapping.
pub const PAGE_KERNEL: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_NX;
/// Default flags for a kernel RO data mapping.
pub const PAGE_KERNEL_RO: u64 = _PAGE_PRESENT | _PAGE_ACCESSED | _PAGE_NX;
/// Flags for an intermediate (L2..L4) entry.
pub const PAGE_TABLE: u64 = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;

/// The guest's virtual-address layout (Linux x86_64, 4-level paging, under Xen PV).
pub mod layout {
    /// Direct map of all pseudo-physical RAM (`PAGE_OFFSET`, L4 slot 273).
    pub const DIRECT_MAP_BASE: u64 = 0xffff_8880_0000_0000;
    pub const DIRECT_MAP_END: u64 = 0xffff_c87f_ffff_ffff;
    /// vmalloc / vmap area (`VMALLOC_START`).
    pub const VMALLOC_BASE: u64 = 0xffff_c900_0000_0000;
    pub const VMALLOC_END: u64 = 0xffff_e8ff_ffff_ffff;
    /// Persistent kmap window (`PKMAP_BASE`): one L1 of 512 slots.
    pub const PKMAP_BASE: u64 = 0xffff_e900_0000_0000;
    pub const PKMAP_END: u64 = PKMAP_BASE + 512 * 4096 - 1;
    /// Fixmap: per-CPU `kmap_atomic` slots and friends.
    pub const FIXMAP_BASE: u64 = 0xffff_e900_0020_0000;
    pub const FIXMAP_END: u64 = FIXMAP_BASE + 512 * 4096 - 1;
    /// Kernel image (`__START_KERNEL_map`, the PV `VIRT_BASE`).
    pub const KERNEL_BASE: u64 = 0xffff_ffff_8000_0000;
    pub const KERNEL_END: u64 = 0xffff_ffff_ffff_ffff;
    /// User space: the lower canonical half.
    pub const USER_END: u64 = 0x0000_7fff_ffff_ffff;
}
