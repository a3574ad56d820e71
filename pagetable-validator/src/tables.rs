//! Whole-table validation (`alloc_lN_table`) and devalidation
//! (`free_lN_table`): every present entry takes (or releases) its reference; a
//! failure at slot i releases slots 0..i, so nothing changes.

use crate::frames::GuestFrames;
use crate::model::{Mfn, PageType, XenError};
use crate::pte::{pte_mfn, _PAGE_PRESENT, _PAGE_RW, ENTRIES};
use crate::rules::is_xen_l4_slot;
use crate::validator::Validator;
use crate::xenlog::{hex5, msg, LINE_UNKNOWN};

#[inline]
fn present(e: u64) -> bool {
    e & _PAGE_PRESENT != 0
}

impl Validator {
    /// Validates table `t` as `level`: every present entry takes its reference.
    /// On failure, the references taken so far are released.
    pub(crate) fn validate_table<M: GuestFrames>(
        &mut self,
        mem: &M,
        t: Mfn,
        level: u32,
    ) -> Result<(), XenError> {
        let mut owned = [0u64; ENTRIES];
        let buf = match mem.frame_ref(t) {
            Some(b) => b,
            None => {
                mem.read_frame(t, &mut owned);
                &owned
            }
        };
        let res = if level == 1 {
            self.validate_l1(mem, t, buf)
        } else {
            self.validate_ln(mem, t, level, buf)
        };
        if let Err((slot, err)) = res {
            self.log.push(msg(
                LINE_UNKNOWN,
                format!(
                    "Failure {} in alloc_l{level}_table: slot {slot:#x}",
                    err.errno()
                ),
            ));
            self.log.push(msg(
                LINE_UNKNOWN,
                format!(
                    "Error while validating mfn {} (pfn {}) for type {:016x}: caf={:08x} taf={:016x}",
                    hex5(t),
                    hex5(self.pfn_or_invalid(t)),
                    PageType::table(level).map_or(0, PageType::xen_bits),
                    self.frames[t as usize].refs,
                    self.frames[t as usize].xen_type_info()
                ),
            ));
            return Err(err);
        }
        Ok(())
    }

    /// The hot loop: one L1 table.
    #[inline(never)]
    fn validate_l1<M: GuestFrames>(
        &mut self,
        mem: &M,
        t: Mfn,
        buf: &[u64; ENTRIES],
    ) -> Result<(), (usize, XenError)> {
        let disallow = self.rules.l1_disallow;
        let mut i = 0;
        while i < ENTRIES {
            // Fast scan over a local slice (no reloads through `self`): the same
            // checks as get_page_from_l1e and the same type rule
            // (Frame::try_get_type_fast) as get_page_type. It stops at the first
            // entry needing anything else.
            let frames = &mut self.frames[..];
            while i < ENTRIES {
                let e = buf[i];
                if present(e) {
                    if e & disallow != 0 {
                        break;
                    }
                    let Some(f) = frames.get_mut(pte_mfn(e) as usize) else {
                        break;
                    };
                    if f.refs == u32::MAX
                        || (e & _PAGE_RW != 0 && !f.try_get_type_fast(PageType::Writable))
                    {
                        break;
                    }
                    f.refs += 1;
                }
                i += 1;
            }
            if i == ENTRIES {
                break;
            }
            if let Err(err) = self.get_page_from_l1e(mem, t, i, buf[i]) {
                for &old in buf[..i].iter().rev() {
                    self.put_page_from_l1e(mem, old);
                }
                return Err((i, err));
            }
            i += 1;
        }
        Ok(())
    }

    fn validate_ln<M: GuestFrames>(
        &mut self,
        mem: &M,
        t: Mfn,
        level: u32,
        buf: &[u64; ENTRIES],
    ) -> Result<(), (usize, XenError)> {
        for (i, &e) in buf.iter().enumerate() {
            if !present(e) {
                continue;
            }
            let res = if level == 4 && is_xen_l4_slot(i) {
                // Xen overwrites these slots with its own mappings. We have no
                // hypervisor there and cannot let guest content reach the
                // hardware unvalidated, so a populated slot is refused.
                self.log.push(msg(
                    LINE_UNKNOWN,
                    format!(
                        "L4 slot {i:#x} in the Xen-private area is populated ({e:016x}); refusing"
                    ),
                ));
                Err(XenError::inval("populated Xen-private L4 slot"))
            } else {
                self.get_page_from_lne(mem, level, t, i, e)
            };
            if let Err(err) = res {
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
            for &e in buf {
                self.put_page_from_l1e(mem, e);
            }
        } else {
            for (i, &e) in buf.iter().enumerate().rev() {
                if !(level == 4 && is_xen_l4_slot(i)) {
                    self.put_page_from_lne(mem, level, t, e);
                }
            }
        }
    }
}
