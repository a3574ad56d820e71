//! The physical-to-machine map and its reverse (Linux: arch/x86/xen/p2m.c).
//!
//! Xen hands the guest `mfn_list[pfn]` (the P2M). Xen also offers a machine-to-phys table in
//! its own reserved area, but the guest does not rely on it (our VMM need not provide it):
//! [`M2p`] is built by the guest from the P2M: a direct table when the machine frames are
//! dense (the usual case, shuffled or not), else sorted runs of consecutive frames.

use pagetable_validator::abi::StartInfo;

use super::memblock::Memblock;
use super::{Mfn, Pfn};

/// `mfn_list` value of a pfn without memory.
pub const INVALID_P2M_ENTRY: u64 = !0;

/// `pfn_to_mfn` over `start_info.mfn_list`.
pub struct P2m {
    list: &'static [u64],
}

impl P2m {
    /// # Safety
    /// `si.mfn_list` must be the virtual address of `si.nr_pages` readable u64s that stay
    /// mapped and unchanged for the life of the kernel (the domain builder's P2M).
    pub unsafe fn from_start_info(si: &StartInfo) -> P2m {
        // SAFETY: per the caller's contract.
        let list =
            unsafe { core::slice::from_raw_parts(si.mfn_list as *const u64, si.nr_pages as usize) };
        P2m { list }
    }

    /// Number of pfns the domain has.
    pub fn nr_pages(&self) -> u64 {
        self.list.len() as u64
    }

    /// The machine frame backing `pfn`, if it has one.
    pub fn try_pfn_to_mfn(&self, pfn: Pfn) -> Option<Mfn> {
        match self.list.get(pfn.0 as usize) {
            Some(&m) if m != INVALID_P2M_ENTRY => Some(Mfn(m)),
            _ => None,
        }
    }

    /// The machine frame backing `pfn`; a pfn outside the domain is a kernel bug.
    pub fn pfn_to_mfn(&self, pfn: Pfn) -> Mfn {
        match self.try_pfn_to_mfn(pfn) {
            Some(m) => m,
            None => panic!("pfn_to_mfn: pfn {:#x} has no machine frame", pfn.0),
        }
    }

    /// Searches `pfns` linearly for the pfn backed by `mfn` (for use before [`M2p`] exists).
    pub fn find_in(&self, mfn: Mfn, pfns: core::ops::Range<u64>) -> Option<Pfn> {
        pfns.map(Pfn).find(|&p| self.try_pfn_to_mfn(p) == Some(mfn))
    }
}

/// One run of the reverse map: `len` frames with `mfn + i` backing `pfn + i`.
#[derive(Clone, Copy, Default)]
#[repr(C)]
struct Run {
    mfn: u64,
    pfn: u32,
    len: u32,
}

/// The reverse map `mfn_to_pfn`, built by the guest from the P2M.
pub struct M2p {
    repr: Repr,
}

enum Repr {
    /// Dense machine frames: `pfn + 1` per mfn from `base` (0 = not ours). O(1) lookups and an
    /// O(n) build whatever the P2M's order (a shuffled P2M costs nothing extra).
    Direct {
        base: u64,
        slots: &'static mut [u32],
    },
    /// Sparse machine frames: runs sorted by mfn, binary-searched.
    Runs(&'static mut [Run]),
}

/// How the reverse map is stored (for the boot log).
#[derive(Clone, Copy, Debug)]
pub enum M2pKind {
    Direct { span: usize },
    Runs { nr: usize },
}

impl core::fmt::Display for M2pKind {
    fn fmt(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
        match self {
            M2pKind::Direct { span } => write!(f, "direct/{span}"),
            M2pKind::Runs { nr } => write!(f, "runs/{nr}"),
        }
    }
}

impl M2p {
    /// Builds the reverse map; its memory comes from memblock. `None` if memblock is too small.
    /// A direct table when the machine frames are dense (span at most 4x the page count) and
    /// the table takes at most half of what memblock has left; sorted runs otherwise.
    pub fn build(p2m: &P2m, memblock: &mut Memblock) -> Option<M2p> {
        assert!(
            p2m.nr_pages() < u32::MAX as u64,
            "too many pfns for the reverse map"
        );
        let valid = || (0..p2m.nr_pages()).filter_map(|p| Some((p2m.try_pfn_to_mfn(Pfn(p))?, p)));
        let (lo, hi) = valid().fold((u64::MAX, 0), |(lo, hi), (m, _)| (lo.min(m.0), hi.max(m.0)));
        let span = hi.checked_sub(lo)?.checked_add(1)?;
        let table_pages = (span * 4).div_ceil(super::PAGE_SIZE);
        if span <= 4 * p2m.nr_pages() && table_pages <= memblock.free() / 2 {
            // SAFETY: u32 is valid when zero (= no pfn).
            let slots: &'static mut [u32] = unsafe { memblock.alloc_array::<u32>(span as usize)? };
            for (m, p) in valid() {
                slots[(m.0 - lo) as usize] = p as u32 + 1;
            }
            return Some(M2p {
                repr: Repr::Direct { base: lo, slots },
            });
        }
        Self::build_runs(p2m, memblock)
    }

    /// Builds the sorted-runs form regardless of density (the fallback; selftest compares it).
    pub fn build_runs(p2m: &P2m, memblock: &mut Memblock) -> Option<M2p> {
        let nr = Self::runs(p2m).count();
        // SAFETY: Run is plain integers, for which all-zero is a valid value.
        let runs: &'static mut [Run] = unsafe { memblock.alloc_array::<Run>(nr)? };
        for (slot, run) in runs.iter_mut().zip(Self::runs(p2m)) {
            *slot = run;
        }
        heapsort_by_mfn(runs);
        Some(M2p {
            repr: Repr::Runs(runs),
        })
    }

    /// Maximal runs of consecutive pfns backed by consecutive mfns, in pfn order.
    fn runs(p2m: &P2m) -> impl Iterator<Item = Run> + '_ {
        let mut pfn = 0u64;
        core::iter::from_fn(move || {
            // Skip pfns without memory.
            while pfn < p2m.nr_pages() && p2m.try_pfn_to_mfn(Pfn(pfn)).is_none() {
                pfn += 1;
            }
            let start = p2m.try_pfn_to_mfn(Pfn(pfn))?;
            let mut len = 1u64;
            while len < u32::MAX as u64
                && p2m.try_pfn_to_mfn(Pfn(pfn + len)) == Some(Mfn(start.0 + len))
            {
                len += 1;
            }
            let run = Run {
                mfn: start.0,
                pfn: pfn as u32,
                len: len as u32,
            };
            pfn += len;
            Some(run)
        })
    }

    /// How the map is stored.
    pub fn kind(&self) -> M2pKind {
        match &self.repr {
            Repr::Direct { slots, .. } => M2pKind::Direct { span: slots.len() },
            Repr::Runs(runs) => M2pKind::Runs { nr: runs.len() },
        }
    }

    /// The pfn backed by `mfn`, or `None` if the frame is not ours.
    pub fn mfn_to_pfn(&self, mfn: Mfn) -> Option<Pfn> {
        match &self.repr {
            Repr::Direct { base, slots } => {
                let slot = *slots.get(usize::try_from(mfn.0.checked_sub(*base)?).ok()?)?;
                slot.checked_sub(1).map(|p| Pfn(p as u64))
            }
            Repr::Runs(runs) => {
                // Index of the first run starting above mfn; the candidate is the one before.
                let i = runs.partition_point(|r| r.mfn <= mfn.0);
                let r = runs.get(i.checked_sub(1)?)?;
                (mfn.0 - r.mfn < r.len as u64).then(|| Pfn(r.pfn as u64 + (mfn.0 - r.mfn)))
            }
        }
    }
}

/// In-place heapsort by mfn: O(n log n), no recursion, no allocation.
fn heapsort_by_mfn(a: &mut [Run]) {
    fn sift_down(a: &mut [Run], mut root: usize, end: usize) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && a[child + 1].mfn > a[child].mfn {
                child += 1;
            }
            if a[root].mfn >= a[child].mfn {
                return;
            }
            a.swap(root, child);
            root = child;
        }
    }
    // Already sorted is the common case (contiguous dom0 memory): skip the work.
    if a.windows(2).all(|w| w[0].mfn <= w[1].mfn) {
        return;
    }
    let n = a.len();
    for i in (0..n / 2).rev() {
        sift_down(a, i, n);
    }
    for end in (1..n).rev() {
        a.swap(0, end);
        sift_down(a, 0, end);
    }
}
