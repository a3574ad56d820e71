//! Guest memory as the validator sees it: machine frames of 512 entries.

use crate::frame::Mfn;
use crate::pte::ENTRIES;
use crate::validator::ix;

/// Guest machine frames as the validator sees them. Valid mfns: `0..nr_frames()`.
///
/// The validator calls these only with `mfn < nr_frames()` and `slot < 512`.
pub trait GuestFrames {
    fn nr_frames(&self) -> u64;
    /// Entry `slot` (0..512) of frame `mfn`.
    fn read_entry(&self, mfn: Mfn, slot: usize) -> u64;
    fn write_entry(&mut self, mfn: Mfn, slot: usize, val: u64);
    /// Whole frame. The default loops over `read_entry`; implement it for speed
    /// (validation reads every table through it).
    fn read_frame(&self, mfn: Mfn, out: &mut [u64; ENTRIES]) {
        for (slot, e) in out.iter_mut().enumerate() {
            *e = self.read_entry(mfn, slot);
        }
    }
    /// Direct read-only access to a whole frame, if the memory allows it without
    /// copying (default: `None`, the validator then uses `read_frame`). The
    /// validator only calls it with `&self` borrowed, so the frame cannot change
    /// while the reference lives.
    fn frame_ref(&self, _mfn: Mfn) -> Option<&[u64; ENTRIES]> {
        None
    }
    /// Direct mutable access to a whole frame, if available (default: `None`,
    /// the validator then uses `write_entry` for the entries it changes). Used
    /// to write back Xen's adjusted entries after a table is validated.
    fn frame_mut(&mut self, _mfn: Mfn) -> Option<&mut [u64; ENTRIES]> {
        None
    }
}

static ZERO_FRAME: [u64; ENTRIES] = [0; ENTRIES];

/// Plain in-memory frames for tests, benches, fuzzing and offline replay.
///
/// Sparse: a frame is allocated on its first write, so a large machine with few
/// pagetable frames costs little memory. Never-written frames read as zero.
#[derive(Clone, Debug)]
pub struct VecFrames {
    frames: Vec<Option<Box<[u64; ENTRIES]>>>,
}

impl VecFrames {
    pub fn new(nr_frames: u64) -> Self {
        let n = usize::try_from(nr_frames).expect("nr_frames fits in usize");
        VecFrames {
            frames: vec![None; n],
        }
    }

    /// Frame `mfn` (panics if `mfn >= nr_frames`, like slice indexing).
    #[inline]
    pub fn frame(&self, mfn: Mfn) -> &[u64; ENTRIES] {
        self.frames[ix(mfn)].as_deref().unwrap_or(&ZERO_FRAME)
    }

    /// Frame `mfn`, allocated if needed (panics if `mfn >= nr_frames`).
    #[inline]
    pub fn frame_mut(&mut self, mfn: Mfn) -> &mut [u64; ENTRIES] {
        self.frames[ix(mfn)].get_or_insert_with(|| Box::new([0; ENTRIES]))
    }
}

impl GuestFrames for VecFrames {
    fn nr_frames(&self) -> u64 {
        self.frames.len() as u64
    }

    #[inline]
    fn read_entry(&self, mfn: Mfn, slot: usize) -> u64 {
        self.frame(mfn)[slot]
    }

    #[inline]
    fn write_entry(&mut self, mfn: Mfn, slot: usize, val: u64) {
        // Writing zero into a never-allocated frame changes nothing.
        if val == 0 && self.frames[ix(mfn)].is_none() {
            return;
        }
        self.frame_mut(mfn)[slot] = val;
    }

    #[inline]
    fn read_frame(&self, mfn: Mfn, out: &mut [u64; ENTRIES]) {
        out.copy_from_slice(self.frame(mfn));
    }

    #[inline]
    fn frame_ref(&self, mfn: Mfn) -> Option<&[u64; ENTRIES]> {
        Some(self.frame(mfn))
    }

    #[inline]
    fn frame_mut(&mut self, mfn: Mfn) -> Option<&mut [u64; ENTRIES]> {
        Some(VecFrames::frame_mut(self, mfn))
    }
}

impl PartialEq for VecFrames {
    /// Content equality (an allocated all-zero frame equals a never-written one).
    fn eq(&self, other: &Self) -> bool {
        self.frames.len() == other.frames.len()
            && (0..self.frames.len() as u64).all(|m| self.frame(Mfn(m)) == other.frame(Mfn(m)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_frames_read_zero_and_keep_writes() {
        let mut m = VecFrames::new(4);
        assert_eq!(m.read_entry(Mfn(3), 7), 0);
        m.write_entry(Mfn(3), 7, 0x1234);
        m.write_entry(Mfn(2), 0, 0);
        assert_eq!(m.read_entry(Mfn(3), 7), 0x1234);
        let mut buf = [1u64; ENTRIES];
        m.read_frame(Mfn(2), &mut buf);
        assert!(buf.iter().all(|&e| e == 0));
        m.read_frame(Mfn(3), &mut buf);
        assert_eq!(buf[7], 0x1234);
        assert_eq!(m.nr_frames(), 4);
        let mut n = VecFrames::new(4);
        n.frame_mut(Mfn(1));
        n.write_entry(Mfn(3), 7, 0x1234);
        assert_eq!(m, n);
    }
}
