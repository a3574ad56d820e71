//! The page allocator (Linux: mm/page_alloc.c), over the pfns above the bootstrap region.
//!
//! Two zones, like 32-bit Linux:
//! * `ZONE_NORMAL`: every allocator pfn the direct map covers ([`super::directmap`] maps them
//!   read-write at `page_address(pfn)` from boot on, so a page that is to become a page table
//!   must have that alias made read-only first);
//! * `ZONE_HIGHMEM`: the top `highmem=<pages>` pfns of RAM (cmdline, default
//!   [`DEFAULT_HIGHMEM_PAGES`]), never direct-mapped: no mapping at all when handed out;
//!   reach one through kmap / kmap_atomic / a fixmap slot.
//!
//! Each zone is a bitmap (1 = allocated) with lowest-address first fit, so a scenario gets the
//! same relative pages under any hypervisor. `alloc_pages(order)` returns naturally aligned
//! blocks. Per-page state lives in `mem_map` ([`Page`]): a reference count and the compound
//! head/tail marks of `__GFP_COMP` allocations.
//!
//! Reference counting follows Linux: an allocation starts with count 1 on its first page;
//! [`PageAlloc::get_page`]/[`PageAlloc::put_page`] act on the compound head when given a tail
//! (`virt_to_head_page`), and the last `put_page` frees the page (the whole compound for a
//! head). A plain (non-compound) higher-order block has no such link: a reference taken on
//! one of its tail pages lands on the tail's own count and does not keep the block alive —
//! exactly the bug the `compound-vmap tail-ref` scenario shows. `put_page` on a free page is
//! a kernel bug; it is counted in [`PageAlloc::bad_pages`] (Linux: "Bad page state") instead
//! of crashing, so a scenario can report it.

use super::memblock::{Memblock, PfnRange};
use super::Pfn;

/// Largest supported order (4 MiB blocks).
pub const MAX_ORDER: u32 = 10;

/// Highmem pages when the command line does not say (`highmem=<pages>`).
pub const DEFAULT_HIGHMEM_PAGES: u64 = 64;

/// Page flags (Linux: `PG_head`, `PG_tail`).
const PG_HEAD: u8 = 1 << 0;
const PG_TAIL: u8 = 1 << 1;

/// Per-page state (Linux: `struct page`, the parts we need). 8 bytes.
#[derive(Clone, Copy, Default)]
#[repr(C)]
pub struct Page {
    /// `_refcount`. Meaningful on order-0 pages, compound heads and (buggy) plain tails.
    count: u32,
    flags: u8,
    /// `compound_order` on a head; on a tail, the order of its compound (to find the head).
    order: u8,
    _pad: u16,
}

/// One zone: a bitmap allocator over a pfn range.
struct Zone {
    range: PfnRange,
    bitmap: &'static mut [u64],
    nr_free: u64,
}

impl Zone {
    fn new(range: PfnRange, memblock: &mut Memblock) -> Option<Zone> {
        let words = range.len().div_ceil(64).max(1) as usize;
        // SAFETY: u64 is valid when zero (all pages free).
        let bitmap = unsafe { memblock.alloc_array::<u64>(words)? };
        // Bits past the end of the range stay permanently "allocated".
        let tail = range.len() % 64;
        if tail != 0 || range.is_empty() {
            bitmap[words - 1] = !0u64 << tail;
        }
        Some(Zone {
            range,
            bitmap,
            nr_free: range.len(),
        })
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

    fn alloc(&mut self, order: u32) -> Option<Pfn> {
        if order == 0 {
            let (w, word) = self.bitmap.iter().enumerate().find(|(_, w)| **w != !0)?;
            let i = w as u64 * 64 + word.trailing_ones() as u64;
            self.set(i, true);
            self.nr_free -= 1;
            return Some(self.range.start.next(i));
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

    fn allocated(&self, pfn: Pfn) -> bool {
        self.range.contains(pfn) && self.test(pfn.0 - self.range.start.0)
    }

    /// Frees one page; false if it was not allocated.
    fn free_one(&mut self, pfn: Pfn) -> bool {
        if !self.allocated(pfn) {
            return false;
        }
        self.set(pfn.0 - self.range.start.0, false);
        self.nr_free += 1;
        true
    }
}

/// The page allocator: both zones and `mem_map`.
pub struct PageAlloc {
    normal: Zone,
    highmem: Zone,
    /// One [`Page`] per pfn of `normal.range.start..highmem.range.end`.
    mem_map: &'static mut [Page],
    bad_pages: u64,
}

impl PageAlloc {
    /// An allocator owning every page of `range`, of which the top `highmem_pages` (at most
    /// half the range) form ZONE_HIGHMEM. Bitmaps and `mem_map` come from memblock.
    pub fn new(range: PfnRange, highmem_pages: u64, memblock: &mut Memblock) -> Option<PageAlloc> {
        let high = highmem_pages.min(range.len() / 2);
        let split = Pfn(range.end.0 - high);
        let normal = Zone::new(
            PfnRange {
                start: range.start,
                end: split,
            },
            memblock,
        )?;
        let highmem = Zone::new(
            PfnRange {
                start: split,
                end: range.end,
            },
            memblock,
        )?;
        // SAFETY: an all-zero Page is a free page with no flags.
        let mem_map = unsafe { memblock.alloc_array::<Page>(range.len() as usize)? };
        Some(PageAlloc {
            normal,
            highmem,
            mem_map,
            bad_pages: 0,
        })
    }

    /// All pfns this allocator manages (both zones).
    pub fn range(&self) -> PfnRange {
        PfnRange {
            start: self.normal.range.start,
            end: self.highmem.range.end,
        }
    }

    /// ZONE_HIGHMEM's pfns (never direct-mapped).
    pub fn highmem_range(&self) -> PfnRange {
        self.highmem.range
    }

    /// Free ZONE_NORMAL pages left.
    pub fn nr_free(&self) -> u64 {
        self.normal.nr_free
    }

    /// Free ZONE_HIGHMEM pages left.
    pub fn nr_free_highmem(&self) -> u64 {
        self.highmem.nr_free
    }

    /// `PageHighMem`: whether `pfn` belongs to ZONE_HIGHMEM.
    pub fn page_high_mem(&self, pfn: Pfn) -> bool {
        self.highmem.range.contains(pfn)
    }

    /// `put_page` calls on free pages and similar misuse seen so far (Linux: "Bad page state").
    pub fn bad_pages(&self) -> u64 {
        self.bad_pages
    }

    fn page(&self, pfn: Pfn) -> &Page {
        let r = self.range();
        assert!(r.contains(pfn), "mem_map: pfn {:#x} not managed", pfn.0);
        &self.mem_map[(pfn.0 - r.start.0) as usize]
    }

    fn page_mut(&mut self, pfn: Pfn) -> &mut Page {
        let r = self.range();
        assert!(r.contains(pfn), "mem_map: pfn {:#x} not managed", pfn.0);
        &mut self.mem_map[(pfn.0 - r.start.0) as usize]
    }

    fn zone_mut(&mut self, pfn: Pfn) -> &mut Zone {
        if self.highmem.range.contains(pfn) {
            &mut self.highmem
        } else {
            &mut self.normal
        }
    }

    /// Whether `pfn` is currently allocated.
    pub fn page_allocated(&self, pfn: Pfn) -> bool {
        self.normal.allocated(pfn) || self.highmem.allocated(pfn)
    }

    /// Marks a fresh block: count 1 on the first page, 0 and no flags elsewhere.
    fn prep_new_page(&mut self, pfn: Pfn, order: u32) -> Pfn {
        for i in 0..1u64 << order {
            *self.page_mut(pfn.next(i)) = Page::default();
        }
        self.page_mut(pfn).count = 1;
        pfn
    }

    /// One ZONE_NORMAL page, lowest free pfn first (count 1).
    pub fn alloc_page(&mut self) -> Option<Pfn> {
        self.alloc_pages(0)
    }

    /// `1 << order` contiguous ZONE_NORMAL pages, first pfn a multiple of `1 << order`; a
    /// plain block (no `__GFP_COMP`): count 1 on the first page, tails unlinked.
    pub fn alloc_pages(&mut self, order: u32) -> Option<Pfn> {
        let pfn = self.normal.alloc(order)?;
        Some(self.prep_new_page(pfn, order))
    }

    /// `alloc_pages(__GFP_COMP, order)`: like [`alloc_pages`](Self::alloc_pages) but the block
    /// is a compound page: references on any tail go to the head.
    pub fn alloc_pages_compound(&mut self, order: u32) -> Option<Pfn> {
        let pfn = self.alloc_pages(order)?;
        if order > 0 {
            let o = order as u8;
            self.page_mut(pfn).flags = PG_HEAD;
            self.page_mut(pfn).order = o;
            for i in 1..1u64 << order {
                let p = self.page_mut(pfn.next(i));
                p.flags = PG_TAIL;
                p.order = o;
            }
        }
        Some(pfn)
    }

    /// One ZONE_HIGHMEM page (count 1), lowest free pfn first. Not mapped anywhere.
    pub fn alloc_highmem_page(&mut self) -> Option<Pfn> {
        let pfn = self.highmem.alloc(0)?;
        Some(self.prep_new_page(pfn, 0))
    }

    /// Drops the caller's reference on a highmem page (frees it at 0).
    pub fn free_highmem_page(&mut self, pfn: Pfn) {
        assert!(
            self.page_high_mem(pfn),
            "free_highmem_page: pfn {:#x} is lowmem",
            pfn.0
        );
        self.put_page(pfn);
    }

    /// `compound_head`: the head of a compound tail, else `pfn` itself.
    pub fn compound_head(&self, pfn: Pfn) -> Pfn {
        let p = self.page(pfn);
        if p.flags & PG_TAIL != 0 {
            Pfn(pfn.0 & !((1u64 << p.order) - 1))
        } else {
            pfn
        }
    }

    /// Whether `pfn` is part of a compound page (head or tail).
    pub fn page_compound(&self, pfn: Pfn) -> bool {
        self.page(pfn).flags & (PG_HEAD | PG_TAIL) != 0
    }

    /// `page_count`: the reference count of `pfn`'s compound head (or of the page itself).
    pub fn page_count(&self, pfn: Pfn) -> u32 {
        self.page(self.compound_head(pfn)).count
    }

    /// `get_page`: one more reference (on the head for a compound tail). Taking a reference on
    /// a free page is a kernel bug: counted as a bad page, no reference taken.
    pub fn get_page(&mut self, pfn: Pfn) {
        let head = self.compound_head(pfn);
        if !self.page_allocated(head) {
            self.bad_pages += 1;
            return;
        }
        self.page_mut(head).count += 1;
    }

    /// `put_page`: drops a reference (on the head for a compound tail); frees the page — the
    /// whole compound for a head — when it was the last. Returns whether it freed. A put on a
    /// free page or a zero count is counted as a bad page and ignored.
    pub fn put_page(&mut self, pfn: Pfn) -> bool {
        let head = self.compound_head(pfn);
        if !self.page_allocated(head) || self.page(head).count == 0 {
            self.bad_pages += 1;
            return false;
        }
        let p = self.page_mut(head);
        p.count -= 1;
        if p.count != 0 {
            return false;
        }
        let order = if p.flags & PG_HEAD != 0 {
            p.order as u32
        } else {
            0
        };
        self.free_block(head, order);
        true
    }

    /// Returns a block to its zone and clears its `mem_map` entries.
    fn free_block(&mut self, pfn: Pfn, order: u32) {
        for i in 0..1u64 << order {
            let p = pfn.next(i);
            *self.page_mut(p) = Page::default();
            if !self.zone_mut(p).free_one(p) {
                self.bad_pages += 1;
            }
        }
    }

    /// `__free_pages(page, order)`: drops the caller's reference on the first page; when it was
    /// the last, the whole `1 << order` block goes back (whatever its tails' own counts say:
    /// nothing links a plain block's tails to it).
    pub fn free_pages(&mut self, pfn: Pfn, order: u32) {
        if self.page_compound(pfn) {
            self.put_page(pfn);
            return;
        }
        if !self.page_allocated(pfn) || self.page(pfn).count == 0 {
            self.bad_pages += 1;
            return;
        }
        self.page_mut(pfn).count -= 1;
        if self.page(pfn).count == 0 {
            self.free_block(pfn, order);
        }
    }

    /// `split_page`: turns a plain order-`order` block into `1 << order` independent order-0
    /// pages with count 1 each.
    pub fn split_page(&mut self, pfn: Pfn, order: u32) {
        assert!(
            !self.page_compound(pfn),
            "split_page: pfn {:#x} is compound",
            pfn.0
        );
        for i in 1..1u64 << order {
            self.page_mut(pfn.next(i)).count = 1;
        }
    }
}
