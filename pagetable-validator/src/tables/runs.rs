//! Entries taken (or released) a chunk at a time: a chunk of [`CHUNK`] present entries with
//! identical flags mapping consecutive frames is a *run*, whose references are taken or
//! dropped all at once when every frame allows the fast case (all or nothing; otherwise the
//! caller goes entry by entry), and the prefetch of the frame records of scattered targets.

use super::present;
use crate::model::{Frame, PageType, MAX_TYPE_COUNT, MAX_UNTYPED, TI_COUNT, TI_PINNED};
use crate::pte::{pte_mfn, PAGE_SHIFT};

/// Entries taken (or released) as one unit when they form a run.
pub(super) const CHUNK: usize = 16;
/// How far ahead (in entries, a multiple of `CHUNK`) the frame records of
/// scattered targets are prefetched: enough to cover an L3 miss at ~2 ns per entry.
pub(super) const PREFETCH_AHEAD: usize = 2 * CHUNK;

/// If `chunk` is a run — present entries with identical flags mapping `CHUNK`
/// consecutive frames, all inside the domain, no flag of `disallow` — the
/// first frame. One pass of XORs and ORs (vectorised); no per-entry branch.
#[inline(always)]
pub(super) fn run_start(chunk: &[u64; CHUNK], disallow: u64, nr: u64) -> Option<usize> {
    // Entry k of a run is e0 + k pages: subtract, compare with e0, OR-reduce
    // (three vector operations per lane group, no per-entry branch).
    const OFFSETS: [u64; CHUNK] = {
        let mut o = [0u64; CHUNK];
        let mut k = 0;
        while k < CHUNK {
            o[k] = (k as u64) << PAGE_SHIFT;
            k += 1;
        }
        o
    };
    let e0 = chunk[0];
    let mut diff = 0u64;
    for k in 0..CHUNK {
        diff |= chunk[k].wrapping_sub(OFFSETS[k]) ^ e0;
    }
    let m0 = pte_mfn(e0);
    // m0 + CHUNK <= nr <= 2^40 frames: the additions above carried no bit out
    // of the address field, so diff == 0 means equal flags.
    let ok = diff == 0 && present(e0) && e0 & disallow == 0 && m0 + CHUNK as u64 <= nr;
    ok.then_some(m0 as usize)
}

#[inline(always)]
pub(super) fn as_chunk_mut<T>(s: &mut [T]) -> &mut [T; CHUNK] {
    s.try_into().expect("run of CHUNK frames")
}

/// Writable type references on a run of frames, if every frame allows the
/// fast case of `get_page_type(PGT_writable_page)` (`Frame::try_get_type_fast`):
/// untyped, or Writable with room in its count. All or nothing.
#[inline(always)]
pub(super) fn take_run_writable(run: &mut [Frame; CHUNK]) -> bool {
    let wv = PageType::Writable.ti_validated();
    // Untyped (0) counts as Writable with count 0; then the frame qualifies iff
    // `ti & !TI_PINNED` is in wv..wv + MAX_TYPE_COUNT. OR-reduced as integers.
    let mut bad = 0u32;
    for f in run.iter() {
        let x = if f.ti == 0 { wv } else { f.ti & !TI_PINNED };
        bad |= u32::from(x.wrapping_sub(wv) >= MAX_TYPE_COUNT);
    }
    if bad == 0 {
        for f in run.iter_mut() {
            let t = f.ti;
            f.ti = t + 1 + if t == 0 { wv } else { 0 };
        }
    }
    bad == 0
}

/// Untyped references on a run of frames, if none overflows. All or nothing.
#[inline(always)]
pub(super) fn take_run_untyped(run: &mut [u32; CHUNK]) -> bool {
    let mut bad = 0u32;
    for &u in run.iter() {
        bad |= u32::from(u >= MAX_UNTYPED);
    }
    if bad == 0 {
        for u in run.iter_mut() {
            *u += 1;
        }
    }
    bad == 0
}

/// Drops writable references on a run of frames, if every frame is a plain
/// Writable frame (nothing tolerated: `put_page_type`'s fast cases). All or
/// nothing.
#[inline(always)]
pub(super) fn put_run_writable(run: &mut [Frame; CHUNK]) -> bool {
    let wv = PageType::Writable.ti_validated();
    // Type Writable, validated, not pinned, count != 0.
    let mut bad = 0u32;
    for f in run.iter() {
        bad |= ((f.ti & !TI_COUNT) ^ wv) | u32::from(f.ti & TI_COUNT == 0);
    }
    if bad == 0 {
        for f in run.iter_mut() {
            let t = f.ti;
            // The last reference leaves the frame untyped (ti 0).
            f.ti = if t == wv | 1 { 0 } else { t - 1 };
        }
    }
    bad == 0
}

/// Drops untyped references on a run of frames, if every frame holds one.
#[inline(always)]
pub(super) fn put_run_untyped(run: &mut [u32; CHUNK]) -> bool {
    let mut bad = 0u32;
    for &u in run.iter() {
        bad |= u32::from(u == 0);
    }
    if bad == 0 {
        for u in run.iter_mut() {
            *u -= 1;
        }
    }
    bad == 0
}

/// A cache hint for `s[i]` (nothing if `i` is out of range or off x86_64).
#[inline(always)]
pub(super) fn prefetch<T>(s: &[T], i: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(r) = s.get(i) {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: `r` is a live reference into `s`; a prefetch reads nothing
        // architecturally and cannot fault, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (s, i);
}
