//! The page allocator (Linux: mm/page_alloc.c), over the pfns above the bootstrap region.
//!
//! Those pages have no mapping at all when handed out, which is what a page-table page wants;
//! to touch one, map it through a fixmap slot. A bitmap (one bit per page, 1 = allocated)
//! with lowest-address first fit keeps the allocation order deterministic, so a scenario gets
//! the same relative pages under any hypervisor. `alloc_pages(order)` returns naturally
//! aligned blocks, ready for compound pages; per-page state (refcounts, compound heads)
//! belongs in a `mem_map` next to this bitmap.

use super::memblock::{Memblock, PfnRange};
use super::Pfn;

/// Largest supported order (4 MiB blocks).
#[allow(dead_code, reason = "kernel API for the scenarios of later issues")]
pub const MAX_ORDER: u32 = 10;

pub struct PageAlloc {
    range: PfnRange,
    bitmap: &'static mut [u64],
    nr_free: u64,
}

impl PageAlloc {
    /// An allocator owning every page of `range`; its bitmap comes from memblock.
    pub fn new(range: PfnRange, memblock: &mut Memblock) -> Option<PageAlloc> {
        let words = range.len().div_ceil(64) as usize;
        // SAFETY: u64 is valid when zero (all pages free).
        let bitmap = unsafe { memblock.alloc_array::<u64>(words)? };
        // Bits past the end of the range stay permanently "allocated".
        let tail = range.len() % 64;
        if tail != 0 {
            bitmap[words - 1] = !0u64 << tail;
        }
        Some(PageAlloc {
            range,
            bitmap,
            nr_free: range.len(),
        })
    }

    /// The pfns this allocator manages.
    #[allow(dead_code, reason = "kernel API for the scenarios of later issues")]
    pub fn range(&self) -> PfnRange {
        self.range
    }

    /// Free pages left.
    pub fn nr_free(&self) -> u64 {
        self.nr_free
    }

    fn test(&self, i: u64) -> bool {
        self.bitmap[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    fn set(&mut self, i: u64, on: bool) {
        let w = &mut self.bitmap[(i / 64) as usize];
        if on {
            *w |= 1 << (i % 64);
        } else {
            *w &= !(1 << (i % 64));
        }
    }

    /// One page, lowest free pfn first.
    pub fn alloc_page(&mut self) -> Option<Pfn> {
        let (w, word) = self.bitmap.iter().enumerate().find(|(_, w)| **w != !0)?;
        let i = w as u64 * 64 + word.trailing_ones() as u64;
        self.set(i, true);
        self.nr_free -= 1;
        Some(self.range.start.next(i))
    }

    /// `1 << order` contiguous pages whose first pfn is a multiple of `1 << order`.
    #[allow(dead_code, reason = "kernel API for the scenarios of later issues")]
    pub fn alloc_pages(&mut self, order: u32) -> Option<Pfn> {
        if order == 0 {
            return self.alloc_page();
        }
        if order > MAX_ORDER {
            return None;
        }
        let n = 1u64 << order;
        // First aligned pfn at or above the range start, as an index into the bitmap.
        let mut i = self.range.start.0.next_multiple_of(n) - self.range.start.0;
        while i + n <= self.range.len() {
            match (i..i + n).find(|&j| self.test(j)) {
                None => {
                    for j in i..i + n {
                        self.set(j, true);
                    }
                    self.nr_free -= n;
                    return Some(self.range.start.next(i));
                }
                // Skip past the busy page to the next aligned block.
                Some(busy) => i = (busy + 1).next_multiple_of(n),
            }
        }
        None
    }

    /// Returns one page. Freeing a page twice or one we do not own is a kernel bug.
    pub fn free_page(&mut self, pfn: Pfn) {
        self.free_pages(pfn, 0)
    }

    /// Returns a block from [`alloc_pages`](Self::alloc_pages) with the same order.
    pub fn free_pages(&mut self, pfn: Pfn, order: u32) {
        let n = 1u64 << order;
        assert!(
            self.range.contains(pfn) && pfn.0 + n <= self.range.end.0,
            "free_pages: pfn {:#x} order {order} outside the allocator",
            pfn.0
        );
        let i = pfn.0 - self.range.start.0;
        for j in i..i + n {
            assert!(
                self.test(j),
                "free_pages: pfn {:#x} is not allocated",
                pfn.0 + (j - i)
            );
            self.set(j, false);
        }
        self.nr_free += n;
    }
}
