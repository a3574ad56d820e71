//! What the JSON log records about guest memory, so `vmm replay` can rebuild every frame the
//! validator reads:
//!
//! * `frames`: before a validation, the contents of the frames it may read (the target and
//!   every table below it whose contents replay does not track yet);
//! * `page_write`: MMUEXT_CLEAR_PAGE / COPY_PAGE, with the destination's resulting contents;
//! * `guest_write`: every other write the VMM makes into guest memory (hypercall results,
//!   `done` counts, xen_version buffers, multicall entries), as guest-physical address + bytes.
//!
//! Only done with `--log`. The guest's own stores are not visible to the VMM: frames the guest
//! may write (not validated tables) are therefore snapshotted again before each validation.

use super::Hypervisor;
use crate::log_record::{FrameContents, VmmRecord};
use crate::logging::FRAMES_PER_RECORD;
use crate::memory::Fault;
use pagetable_validator::abi::MmuUpdate;
use pagetable_validator::pte::{self, PAGE_SIZE};
use pagetable_validator::GuestFrames;
use pagetable_validator::Mfn;

/// Non-zero entries of a frame as `[[slot, value], ...]`.
fn entries(buf: &[u64; 512]) -> Vec<(u64, u64)> {
    (0u64..)
        .zip(buf.iter().copied())
        .filter(|&(_, e)| e != 0)
        .collect()
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

impl Hypervisor {
    /// Writes a guest-virtual buffer for the guest (a hypercall's output) and logs where it went.
    /// Never into a validated pagetable: under enforce no writable mapping of one exists; under
    /// audit a tolerated one may, and the write is refused (-EFAULT) so that tables change only
    /// through the validator, whatever the policy.
    pub(crate) fn write_guest(&mut self, cr3: u64, va: u64, buf: &[u8]) -> Result<(), Fault> {
        let mut off = 0usize;
        while off < buf.len() {
            let cur = va.wrapping_add(off as u64);
            let gpa = self.ram.translate(cr3, cur, true)?;
            let mfn = gpa >> 12;
            if self
                .validator
                .frame_info(Mfn(mfn))
                .is_some_and(|i| i.validated && i.ty.is_table())
            {
                return Err(Fault::PageTable(cur, mfn));
            }
            off += (PAGE_SIZE - (cur & (PAGE_SIZE - 1))) as usize;
        }
        self.ram.write_virt(cr3, va, buf)?;
        if !self.log.machine() {
            return Ok(());
        }
        let mut done = 0usize;
        while done < buf.len() {
            let cur = va.wrapping_add(done as u64);
            let n = ((PAGE_SIZE - (cur & (PAGE_SIZE - 1))) as usize).min(buf.len() - done);
            // The write just went through these same tables.
            let Ok(gpa) = self.ram.translate(cr3, cur, true) else {
                break;
            };
            let hex = hex(&buf[done..done + n]);
            self.log.record(VmmRecord::GuestWrite { gpa, hex });
            done += n;
        }
        Ok(())
    }

    /// After MMUEXT_CLEAR_PAGE / COPY_PAGE wrote frame `dst`: its contents, for replay.
    pub(super) fn record_page_write(&mut self, rip: u64, cmd: u32, dst: u64, src: u64) {
        if !self.log.machine() {
            return;
        }
        let mut buf = [0u64; 512];
        self.ram.read_frame(Mfn(dst), &mut buf);
        self.log.record(VmmRecord::PageWrite {
            cmd,
            dst,
            src,
            rip,
            entries: entries(&buf),
        });
    }

    /// Before an `mmu_update` into an L2..L4 table: the lower table it may validate.
    pub(super) fn snapshot_for_update(&mut self, req: MmuUpdate) {
        let table = req.ptr >> 12;
        let level = self.validator.page_type(Mfn(table)).level();
        if level >= 2 && pte::pte_present(req.val) {
            self.snapshot(pte::pte_mfn(req.val), level - 1);
        }
    }

    /// For offline replay: records the contents (non-zero entries) of `mfn` and of every table
    /// below it whose contents replay does not know, i.e. every frame a validation starting at
    /// `mfn` may read: all but validated tables (which change only through the validator).
    /// Only done with `--log`, on the pin/base/update paths.
    ///
    /// Bounded whatever the guest's tables look like: every frame is visited once (a bitmap),
    /// so the walk holds at most one stack entry per frame, and records carry at most
    /// [`FRAMES_PER_RECORD`] frames.
    pub(crate) fn snapshot(&mut self, mfn: u64, level: u32) {
        let nr = self.ram.nr_frames();
        if mfn >= nr || level == 0 {
            return;
        }
        let mut seen = vec![0u64; nr.div_ceil(64) as usize];
        let mut mark = |m: u64| {
            let (w, b) = ((m / 64) as usize, m % 64);
            let new = seen[w] & (1 << b) == 0;
            seen[w] |= 1 << b;
            new
        };
        mark(mfn);
        let mut stack = vec![(mfn, level)];
        let mut frames: Vec<FrameContents> = Vec::new();
        let mut buf = [0u64; 512];
        while let Some((m, lv)) = stack.pop() {
            if self
                .validator
                .frame_info(Mfn(m))
                .is_some_and(|i| i.validated && i.ty.is_table())
            {
                continue;
            }
            self.ram.read_frame(Mfn(m), &mut buf);
            let ents = entries(&buf);
            if lv > 1 {
                for &(_, e) in &ents {
                    let t = pte::pte_mfn(e);
                    if pte::pte_present(e) && t < nr && mark(t) {
                        stack.push((t, lv - 1));
                    }
                }
            }
            frames.push(FrameContents {
                mfn: m,
                level: lv,
                entries: ents,
            });
            if frames.len() == FRAMES_PER_RECORD {
                let frames = std::mem::take(&mut frames);
                self.log.record(VmmRecord::Frames { frames });
            }
        }
        if !frames.is_empty() {
            self.log.record(VmmRecord::Frames { frames });
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lower_case_pairs() {
        assert_eq!(super::hex(&[0, 0xab, 0x5f]), "00ab5f");
    }
}
