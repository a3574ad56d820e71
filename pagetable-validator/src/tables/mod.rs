//! Whole-table validation (Xen 4.17's `promote_lN_table`) and devalidation
//! (`demote_lN_table`): every present entry takes (or releases) its reference;
//! a failure at slot i releases slots 0..i, so no count changes. Validation
//! also writes Xen's adjusted entries back (see `rules`).
//!
//! This file holds the validation and devalidation of whole tables and the write-back;
//! [`runs`] the chunked fast path they share: a run of entries mapping consecutive frames
//! takes (or releases) all its references in one step.

mod runs;

use runs::{
    as_chunk_mut, prefetch, put_run_untyped, put_run_writable, run_start, take_run_untyped,
    take_run_writable, CHUNK, PREFETCH_AHEAD,
};

use crate::abi::ROOT_PAGETABLE_FIRST_XEN_SLOT;
use crate::frames::GuestFrames;
use crate::model::{Mfn, PageType, XenError, MAX_UNTYPED};
use crate::pte::{pte_mfn, _PAGE_GLOBAL, _PAGE_PRESENT, _PAGE_RW, _PAGE_USER, ENTRIES};
use crate::rules::{
    adjust_guest_l1e, adjust_guest_lne, global_kernel_page, is_xen_l4_slot, _PAGE_GUEST_KERNEL,
};
use crate::validator::Validator;
use crate::xenlog::{self, c_alt_hex, msg, LINE_ERROR_VALIDATING, LINE_PROMOTE_FAILURE};

#[inline]
fn present(e: u64) -> bool {
    e & _PAGE_PRESENT != 0
}

impl Validator {
    /// Validates table `t` as `level`: every present entry takes its reference
    /// and is rewritten in Xen's adjusted form (`adjust_guest_lNe`). On failure
    /// at slot i, the references taken so far are released but, as in Xen,
    /// entries 0..i stay adjusted. A validated L4 gets its hypervisor slots
    /// cleared (Xen's `init_xen_l4_slots`).
    pub(crate) fn validate_table<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        t: Mfn,
        level: u32,
    ) -> Result<(), XenError> {
        let res = if level == 1 {
            // Nothing below an L1 is validated, so memory is only read while the
            // entries are checked; no copy (nor a 4 KiB buffer to clear) when the
            // memory allows a direct view.
            let direct = {
                let mem_r: &M = mem;
                mem_r
                    .frame_ref(t)
                    .map(|buf| self.validate_l1(mem_r, t, buf))
            };
            match direct {
                Some(res) => self.finish_l1(mem, t, res, None),
                None => self.validate_l1_copied(mem, t),
            }
        } else {
            // Validating an entry may validate (and so write) lower tables: work
            // on a copy. This table itself cannot change meanwhile (it is typed).
            let mut owned = [0u64; ENTRIES];
            mem.read_frame(t, &mut owned);
            let res = self.validate_ln(mem, t, level, &owned);
            let upto = res.as_ref().map_or_else(|(i, _)| *i, |()| ENTRIES);
            for (i, &e) in owned[..upto].iter().enumerate() {
                if level == 4 && is_xen_l4_slot(i) {
                    continue;
                }
                let a = adjust_guest_lne(level, e);
                if a != e {
                    mem.write_entry(t, i, a);
                }
            }
            if level == 4 && res.is_ok() {
                // Xen ignores the guest's content here and installs its own
                // mappings (`init_xen_l4_slots`): the VMM's Xen area, or nothing
                // (cleared) without one, so unvalidated guest content never
                // reaches the hardware.
                let first = ROOT_PAGETABLE_FIRST_XEN_SLOT;
                for (k, &x) in self.xen_l4_slots.iter().enumerate() {
                    if owned[first + k] != x {
                        mem.write_entry(t, first + k, x);
                    }
                }
            }
            res
        };
        if let Err((slot, err)) = res {
            self.log.push(msg(
                LINE_PROMOTE_FAILURE[level as usize],
                format!(
                    "Failure {} in promote_l{level}_table: slot {}",
                    err.errno(),
                    c_alt_hex(slot as u64)
                ),
            ));
            self.log.push(xenlog::error_validating(
                LINE_ERROR_VALIDATING,
                t,
                self.pfn_or_invalid(t),
                PageType::table(level).map_or(0, PageType::xen_bits),
                self.refs_of(t),
                self.frame(t).xen_type_info(),
            ));
            return Err(err);
        }
        Ok(())
    }

    /// L1 validation for memory without direct frame access: on a copy.
    #[inline(never)]
    fn validate_l1_copied<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        t: Mfn,
    ) -> Result<(), (usize, XenError)> {
        let mut owned = [0u64; ENTRIES];
        mem.read_frame(t, &mut owned);
        let res = self.validate_l1(mem, t, &owned);
        self.finish_l1(mem, t, res, Some(&owned))
    }

    /// After validating L1 `t`: Xen's rewrite of the accepted entries and its
    /// warnings. `copy` is the frame's content if it was read into a copy.
    fn finish_l1<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        t: Mfn,
        res: Result<L1Acc, (usize, XenError)>,
        copy: Option<&[u64; ENTRIES]>,
    ) -> Result<(), (usize, XenError)> {
        // After a failure the write-back checks every entry itself.
        let (upto, work, res) = match res {
            Ok(acc) => (ENTRIES, acc.write_back_needed(), Ok(())),
            Err((i, err)) => (i, true, Err((i, err))),
        };
        if work {
            for e in write_back_l1(mem, t, copy, upto) {
                self.log.push(xenlog::global_kernel_page(e));
            }
        }
        res
    }

    /// The hot loop: one L1 table. On success returns the AND and OR of the
    /// present entries, from which [`L1Acc::write_back_needed`] decides
    /// conservatively whether Xen's rewrite or warning applies to any entry.
    ///
    /// Entries are taken in chunks of [`CHUNK`]: a chunk mapping consecutive
    /// frames with identical flags (the common case: a kernel maps runs of
    /// pages) is checked and counted as one range ([`take_run`]); any other
    /// chunk entry by entry with the same checks as `get_page_from_l1e` and the
    /// same type rule (`Frame::try_get_type_fast`) as `get_page_type`, the frame
    /// records of the next chunk prefetched. The first entry needing anything
    /// else goes through `get_page_from_l1e` itself. Ranges hold distinct frames
    /// and chunks are taken in order, so the result is that of taking the
    /// entries one by one.
    #[inline(never)]
    fn validate_l1<M: GuestFrames>(
        &mut self,
        mem: &M,
        t: Mfn,
        buf: &[u64; ENTRIES],
    ) -> Result<L1Acc, (usize, XenError)> {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above), the only
            // requirement of calling a `#[target_feature(enable = "avx2")]` fn.
            return unsafe { self.validate_l1_avx2(mem, t, buf) };
        }
        self.validate_l1_body(mem, t, buf)
    }

    /// [`Validator::validate_l1`] compiled for AVX2 (the same code: the compiler
    /// vectorises the run checks and range updates four or eight lanes wide).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn validate_l1_avx2<M: GuestFrames>(
        &mut self,
        mem: &M,
        t: Mfn,
        buf: &[u64; ENTRIES],
    ) -> Result<L1Acc, (usize, XenError)> {
        self.validate_l1_body(mem, t, buf)
    }

    #[inline(always)]
    fn validate_l1_body<M: GuestFrames>(
        &mut self,
        mem: &M,
        t: Mfn,
        buf: &[u64; ENTRIES],
    ) -> Result<L1Acc, (usize, XenError)> {
        let disallow = self.rules.l1_disallow;
        let nr = self.nr;
        let mut acc = L1Acc {
            and: u64::MAX,
            or: 0,
        };
        let mut i = 0;
        while i < ENTRIES {
            // The end of the chunk `i` is in (`i` is off a chunk boundary only
            // after an entry went through the slow path).
            let end = (i | (CHUNK - 1)) + 1;
            let chunk_start = i + CHUNK == end;
            if !chunk_start {
                // Finish the chunk entry by entry.
            } else if let Some(m0) = run_start(buf[i..end].try_into().expect("chunk"), disallow, nr)
            {
                let e0 = buf[i];
                let r = m0..m0 + CHUNK;
                let taken = if e0 & _PAGE_RW != 0 {
                    take_run_writable(as_chunk_mut(&mut self.frames[r]))
                } else {
                    take_run_untyped(as_chunk_mut(&mut self.untyped[r]))
                };
                if taken {
                    // Every entry of the run has e0's flags.
                    acc.and &= e0;
                    acc.or |= e0;
                    i += CHUNK;
                    continue;
                }
            }
            if chunk_start && end + PREFETCH_AHEAD <= ENTRIES {
                let ahead = end + PREFETCH_AHEAD - CHUNK;
                self.prefetch_targets(&buf[ahead..ahead + CHUNK]);
            }
            // Entry by entry over local slices (no reloads through `self`).
            let frames = &mut self.frames[..];
            let untyped = &mut self.untyped[..];
            while i < end {
                let e = buf[i];
                if present(e) {
                    if e & disallow != 0 {
                        break;
                    }
                    let m = pte_mfn(e) as usize;
                    let taken = if e & _PAGE_RW != 0 {
                        frames
                            .get_mut(m)
                            .is_some_and(|f| f.try_get_type_fast(PageType::Writable))
                    } else {
                        untyped.get_mut(m).is_some_and(|u| {
                            let ok = *u < MAX_UNTYPED;
                            *u += u32::from(ok);
                            ok
                        })
                    };
                    if !taken {
                        break;
                    }
                    acc.and &= e;
                    acc.or |= e;
                }
                i += 1;
            }
            if i == end {
                continue;
            }
            if let Err(err) = self.get_page_from_l1e(mem, t, i, buf[i]) {
                self.put_l1_entries(mem, &buf[..i]);
                return Err((i, err));
            }
            if present(buf[i]) {
                acc.and &= buf[i];
                acc.or |= buf[i];
            }
            i += 1;
        }
        Ok(acc)
    }

    /// Hints the frame records the entries of `next` will touch into the cache
    /// (for scattered targets; consecutive ones are the hardware prefetcher's).
    #[inline(always)]
    fn prefetch_targets(&self, next: &[u64]) {
        for &e in next {
            let m = pte_mfn(e) as usize;
            if e & _PAGE_RW != 0 {
                prefetch(&self.frames, m);
            } else {
                prefetch(&self.untyped, m);
            }
        }
    }

    /// `put_page_from_l1e` for every entry of `entries` (a whole L1 being
    /// devalidated, or the entries a failed validation had taken), in chunks
    /// like [`Validator::validate_l1`]: a run of consecutive frames with equal
    /// flags whose records allow the plain decrement is released as one range.
    #[inline(never)]
    pub(crate) fn put_l1_entries<M: GuestFrames>(&mut self, mem: &M, entries: &[u64]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above), the only
            // requirement of calling a `#[target_feature(enable = "avx2")]` fn.
            return unsafe { self.put_l1_entries_avx2(mem, entries) };
        }
        self.put_l1_entries_body(mem, entries)
    }

    /// [`Validator::put_l1_entries`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn put_l1_entries_avx2<M: GuestFrames>(&mut self, mem: &M, entries: &[u64]) {
        self.put_l1_entries_body(mem, entries)
    }

    #[inline(always)]
    fn put_l1_entries_body<M: GuestFrames>(&mut self, mem: &M, entries: &[u64]) {
        let mut chunks = entries.chunks_exact(CHUNK);
        for (c, chunk) in (&mut chunks).enumerate() {
            let chunk: &[u64; CHUNK] = chunk.try_into().expect("chunk");
            let e0 = chunk[0];
            // A run that was taken passed these checks, whatever the rules now.
            if let Some(m0) = run_start(chunk, 0, self.nr) {
                let r = m0..m0 + CHUNK;
                let done = if e0 & _PAGE_RW != 0 {
                    put_run_writable(as_chunk_mut(&mut self.frames[r]))
                } else {
                    put_run_untyped(as_chunk_mut(&mut self.untyped[r]))
                };
                if done {
                    continue;
                }
            }
            let ahead = (c + 1) * CHUNK + PREFETCH_AHEAD - CHUNK;
            if let Some(next) = entries.get(ahead..ahead + CHUNK) {
                self.prefetch_targets(next);
            }
            for &e in chunk {
                self.put_page_from_l1e(mem, e);
            }
        }
        for &e in chunks.remainder() {
            self.put_page_from_l1e(mem, e);
        }
    }

    fn validate_ln<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        t: Mfn,
        level: u32,
        buf: &[u64; ENTRIES],
    ) -> Result<(), (usize, XenError)> {
        for (i, &e) in buf.iter().enumerate() {
            // Xen skips the hypervisor's L4 slots whatever they hold.
            if !present(e) || (level == 4 && is_xen_l4_slot(i)) {
                continue;
            }
            if let Err(err) = self.get_page_from_lne(mem, level, t, i, e) {
                for (j, &old) in buf[..i].iter().enumerate().rev() {
                    if !(level == 4 && is_xen_l4_slot(j)) {
                        self.put_page_from_lne(mem, level, t, old);
                    }
                }
                return Err((i, err));
            }
        }
        Ok(())
    }

    /// Releases every entry's reference of table `t` (its count reached 0).
    pub(crate) fn devalidate_table<M: GuestFrames>(&mut self, mem: &M, t: Mfn, level: u32) {
        let mut owned = [0u64; ENTRIES];
        let buf = match mem.frame_ref(t) {
            Some(b) => b,
            None => {
                mem.read_frame(t, &mut owned);
                &owned
            }
        };
        if level == 1 {
            self.put_l1_entries(mem, buf);
        } else {
            // Forward, like the validation (the order is not observable: releases
            // neither fail nor log), so consecutive tables stream through memory.
            for (i, &e) in buf.iter().enumerate() {
                if !(level == 4 && is_xen_l4_slot(i)) {
                    self.put_page_from_lne(mem, level, t, e);
                }
            }
        }
    }
}

/// Writes entries 0..upto of L1 `t` back in Xen's adjusted form. `copy` is the
/// frame's content if the caller already read it (memory without direct access).
/// Returns the guest values Xen warns about ("Global bit is set in kernel page"),
/// checked before adjusting as in Xen.
fn write_back_l1<M: GuestFrames>(
    mem: &mut M,
    t: Mfn,
    copy: Option<&[u64; ENTRIES]>,
    upto: usize,
) -> Vec<u64> {
    let mut warn = Vec::new();
    if let Some(old) = copy {
        for (i, &e) in old[..upto].iter().enumerate() {
            if global_kernel_page(e) {
                warn.push(e);
            }
            let a = adjust_guest_l1e(e);
            if a != e {
                mem.write_entry(t, i, a);
            }
        }
    } else if let Some(f) = mem.frame_mut(t) {
        // The caller knows (from the validation loop) that something is to do.
        warn.extend(f[..upto].iter().copied().filter(|&e| global_kernel_page(e)));
        for e in &mut f[..upto] {
            *e = adjust_guest_l1e(*e);
        }
    } else {
        for i in 0..upto {
            let e = mem.read_entry(t, i);
            if global_kernel_page(e) {
                warn.push(e);
            }
            let a = adjust_guest_l1e(e);
            if a != e {
                mem.write_entry(t, i, a);
            }
        }
    }
    warn
}

/// AND and OR over the present entries of an L1.
#[derive(Clone, Copy, Debug)]
struct L1Acc {
    and: u64,
    or: u64,
}

impl L1Acc {
    /// False only if no present entry needs `adjust_guest_l1e` (all have USER,
    /// and all GUEST_KERNEL or all GLOBAL) and none can draw Xen's warning (not
    /// both GUEST_KERNEL and GLOBAL seen). A table validated before is in that
    /// state, so re-pinning it writes nothing and keeps its cache lines clean.
    fn write_back_needed(self) -> bool {
        let settled =
            self.and & _PAGE_USER != 0 && self.and & (_PAGE_GUEST_KERNEL | _PAGE_GLOBAL) != 0;
        let maybe_warn = self.or & _PAGE_GUEST_KERNEL != 0 && self.or & _PAGE_GLOBAL != 0;
        !settled || maybe_warn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_back_skipped_only_when_nothing_changes() {
        let bits = [_PAGE_USER, _PAGE_GLOBAL, _PAGE_GUEST_KERNEL];
        let entry = |combo: u32| {
            bits.iter()
                .enumerate()
                .filter(|(i, _)| combo & (1 << i) != 0)
                .fold(0x1234_5000 | _PAGE_PRESENT | _PAGE_RW, |acc, (_, b)| {
                    acc | b
                })
        };
        // Every pair of present entries (a one-entry table is the pair (x, x)).
        for a in 0..8 {
            for b in 0..8 {
                let (x, y) = (entry(a), entry(b));
                let acc = L1Acc {
                    and: x & y,
                    or: x | y,
                };
                let work = [x, y]
                    .iter()
                    .any(|&e| adjust_guest_l1e(e) != e || global_kernel_page(e));
                if work {
                    assert!(acc.write_back_needed(), "{x:#x} {y:#x}");
                }
            }
        }
        // The common settled cases are skipped.
        let k = entry(0b101); // USER | GUEST_KERNEL
        let u = entry(0b011); // USER | GLOBAL
        for e in [k, u] {
            assert!(!L1Acc { and: e, or: e }.write_back_needed());
        }
        assert!(!L1Acc {
            and: u64::MAX,
            or: 0
        }
        .write_back_needed());
    }
}
