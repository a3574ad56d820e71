//! Early allocations from the bootstrap region (Linux: mm/memblock.c).
//!
//! The domain builder maps the whole bootstrap region read-write at `KERNEL_BASE + pfn * 4096`
//! (page tables excepted), so its free pages — below the kernel image and between the boot
//! stack and the end of the region — are usable before the kernel has mappings of its own.
//! Memblock hands them out once, bump-pointer style, zeroed. They stay mapped read-write there:
//! a memblock page that becomes a page table must first have that alias made read-only.

use pagetable_validator::pte::PAGE_SIZE;

use super::{boot_va, Pfn};

/// A half-open range of pfns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfnRange {
    pub start: Pfn,
    pub end: Pfn,
}

impl PfnRange {
    pub const fn new(start: u64, end: u64) -> PfnRange {
        PfnRange {
            start: Pfn(start),
            end: Pfn(end),
        }
    }
    pub const fn len(&self) -> u64 {
        self.end.0.saturating_sub(self.start.0)
    }
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub const fn contains(&self, pfn: Pfn) -> bool {
        self.start.0 <= pfn.0 && pfn.0 < self.end.0
    }
}

const MAX_RANGES: usize = 4;

/// Bump allocator over free, already-mapped bootstrap pages.
pub struct Memblock {
    ranges: [PfnRange; MAX_RANGES],
    nr: usize,
    allocated: u64,
}

impl Default for Memblock {
    fn default() -> Self {
        Self::new()
    }
}

impl Memblock {
    pub const fn new() -> Memblock {
        Memblock {
            ranges: [PfnRange::new(0, 0); MAX_RANGES],
            nr: 0,
            allocated: 0,
        }
    }

    /// Adds free pages; they must be mapped read-write at [`boot_va`]. Empty ranges are ignored.
    pub fn add(&mut self, range: PfnRange) {
        if range.is_empty() {
            return;
        }
        assert!(self.nr < MAX_RANGES, "memblock: too many ranges");
        self.ranges[self.nr] = range;
        self.nr += 1;
    }

    /// Allocates `n` contiguous zeroed pages (first fit, lowest range first).
    pub fn alloc(&mut self, n: u64) -> Option<Pfn> {
        let r = self.ranges[..self.nr].iter_mut().find(|r| r.len() >= n)?;
        let pfn = r.start;
        r.start = pfn.next(n);
        self.allocated += n;
        // SAFETY: the pages are free bootstrap pages, mapped read-write at boot_va (add()'s
        // contract), handed out exactly once, and nothing else references them yet.
        unsafe { core::ptr::write_bytes(boot_va(pfn) as *mut u8, 0, (n * PAGE_SIZE) as usize) };
        Some(pfn)
    }

    /// Allocates a zeroed array of `n` values of `T` on whole pages.
    ///
    /// # Safety
    /// All-zero bytes must be a valid `T`.
    pub unsafe fn alloc_array<T>(&mut self, n: usize) -> Option<&'static mut [T]> {
        assert!(core::mem::align_of::<T>() <= PAGE_SIZE as usize);
        let bytes = (n * core::mem::size_of::<T>()) as u64;
        let pfn = self.alloc(bytes.div_ceil(PAGE_SIZE).max(1))?;
        // SAFETY: freshly allocated, zeroed, page-aligned, mapped RW and exclusively ours for
        // the life of the kernel; zero is a valid T per the caller's contract.
        Some(unsafe { core::slice::from_raw_parts_mut(boot_va(pfn) as *mut T, n) })
    }

    /// Pages still free.
    pub fn free(&self) -> u64 {
        self.ranges[..self.nr].iter().map(|r| r.len()).sum()
    }
}
