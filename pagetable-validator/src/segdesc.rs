//! Descriptor-table pages (Xen's `PGT_seg_desc_page`): the GDT frames of
//! `HYPERVISOR_set_gdt` and `HYPERVISOR_update_descriptor`.
//!
//! Xen 4.17 facts (`arch/x86/pv/descriptor-tables.c`, `arch/x86/mm.c`):
//! * The first `PGT_seg_desc_page` reference validates the frame: every one of
//!   its 512 descriptors must pass `check_descriptor`, which also writes its
//!   fix-ups back into the frame (entries before a refused one stay fixed up).
//!   A failure is "Error while validating mfn …" and -EINVAL.
//! * The type rules are those of pagetables: a frame still mapped writable
//!   cannot become a descriptor page ("Bad type"), and a writable mapping of a
//!   descriptor page is refused (`get_page_from_l1e`).
//! * `pv_set_gdt`: more than `FIRST_RESERVED_GDT_ENTRY` entries is -EINVAL; the
//!   `ceil(entries / 512)` new frames each take a general and a descriptor-page
//!   type reference (any failure, or a frame outside the domain: release those
//!   taken, -EINVAL); only then are the old GDT's references dropped. 0 entries
//!   is a valid, empty GDT.
//! * `do_update_descriptor(gaddr, desc)`: `gaddr` (for PV a machine address)
//!   must be 8-byte aligned and `desc` pass `check_descriptor` (else -EINVAL);
//!   the frame must be in the domain; a descriptor page takes one more
//!   descriptor-page reference, any other frame a writable one (a pagetable
//!   refuses it: "Bad type", -EINVAL); then the fixed-up descriptor is stored
//!   and the transient references are dropped.
//!
//! Not modelled: the LDT (`MMUEXT_SET_LDT` only records base and size; Xen
//! types LDT frames lazily when the guest first uses them, on a fault).

use crate::event::Op;
use crate::frames::GuestFrames;
use crate::model::{Mfn, PageType, XenError};
use crate::pte::ENTRIES;
use crate::refs::Origin;
use crate::rules::{check_descriptor, FIRST_RESERVED_GDT_ENTRY};
use crate::validator::Validator;
use crate::xenlog::{self, LINE_ERROR_VALIDATING};

impl Validator {
    /// `validate_segdesc_page`: checks (and fixes up) the 512 descriptors of `t`.
    pub(crate) fn validate_segdesc<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        t: Mfn,
    ) -> Result<(), XenError> {
        for i in 0..ENTRIES {
            let d = mem.read_entry(t, i);
            match check_descriptor(d) {
                Some(fixed) => {
                    if fixed != d {
                        mem.write_entry(t, i, fixed);
                    }
                }
                None => {
                    self.log.push(xenlog::error_validating(
                        LINE_ERROR_VALIDATING,
                        t,
                        self.pfn_or_invalid(t),
                        PageType::SegDesc.xen_bits(),
                        self.refs_of(t),
                        self.frame(t).xen_type_info(),
                    ));
                    return Err(XenError::inval(format!(
                        "descriptor {i} of mfn {t:x} refused"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The current GDT frames (`HYPERVISOR_set_gdt`), each holding one
    /// descriptor-page reference.
    pub fn gdt_frames(&self) -> &[Mfn] {
        &self.gdt
    }

    /// The current GDT's number of entries.
    pub fn gdt_entries(&self) -> u32 {
        self.gdt_ents
    }

    /// `HYPERVISOR_set_gdt(frames, entries)` (Xen's `pv_set_gdt`): the first
    /// `ceil(entries / 512)` of `frames` become the GDT. `frames` shorter than
    /// that is -EFAULT (the guest's list could not be read in full).
    pub fn set_gdt<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        frames: &[Mfn],
        entries: u32,
    ) -> Result<(), XenError> {
        let nr = (entries as usize).div_ceil(ENTRIES);
        let res = self
            .check_mem(mem)
            .and_then(|()| self.do_set_gdt(mem, frames, entries));
        let op = Op::SetGdt {
            frames: frames.iter().copied().take(nr.min(16)).collect(),
            entries,
        };
        self.finish(op, &res);
        res
    }

    fn do_set_gdt<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        frames: &[Mfn],
        entries: u32,
    ) -> Result<(), XenError> {
        if entries > FIRST_RESERVED_GDT_ENTRY {
            return Err(XenError::inval(format!("{entries} GDT entries")));
        }
        let nr = (entries as usize).div_ceil(ENTRIES);
        let new = frames.get(..nr).ok_or(XenError::Fault)?;
        for (i, &m) in new.iter().enumerate() {
            let ok = self.in_domain(m)
                && self
                    .get_page_type(mem, m, PageType::SegDesc, Origin::Pin)
                    .is_ok();
            if !ok {
                for &taken in new[..i].iter().rev() {
                    self.put_page_type(mem, taken, PageType::SegDesc);
                }
                return Err(XenError::inval(format!(
                    "GDT frame {i} (mfn {m:x}) is not a valid descriptor page"
                )));
            }
        }
        for old in std::mem::take(&mut self.gdt) {
            self.put_page_type(mem, old, PageType::SegDesc);
        }
        self.gdt = new.to_vec();
        self.gdt_ents = entries;
        Ok(())
    }

    /// `HYPERVISOR_update_descriptor(maddr, desc)`: stores one descriptor at
    /// machine address `maddr`, checked and fixed up like Xen does, through
    /// guest memory.
    pub fn update_descriptor<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        maddr: u64,
        desc: u64,
    ) -> Result<(), XenError> {
        let mut stored = None;
        let res = self.check_mem(mem).and_then(|()| {
            stored = Some(self.do_update_descriptor(mem, maddr, desc)?);
            Ok(())
        });
        self.finish(
            Op::UpdateDescriptor {
                maddr,
                desc,
                stored,
            },
            &res,
        );
        res
    }

    fn do_update_descriptor<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        maddr: u64,
        desc: u64,
    ) -> Result<u64, XenError> {
        let Some(fixed) = check_descriptor(desc).filter(|_| maddr & 7 == 0) else {
            return Err(XenError::inval(format!(
                "descriptor {desc:016x} at {maddr:x} refused"
            )));
        };
        let mfn = Mfn(maddr >> 12);
        if !self.in_domain(mfn) {
            return Err(XenError::inval(format!("mfn {mfn:x} outside the domain")));
        }
        let f = self.frame(mfn);
        // Xen takes a transient reference of the frame's kind and drops it once
        // the store is done; only its failure is observable.
        if f.count() != 0 && f.ty().is_table() {
            self.log_bad_type(f, PageType::Writable, mfn);
            return Err(XenError::inval(format!(
                "mfn {mfn:x} is a pagetable; descriptor store refused"
            )));
        }
        if f.ty() == PageType::SegDesc && f.count() >= crate::model::MAX_TYPE_COUNT {
            return Err(XenError::inval("type count overflow"));
        }
        mem.write_entry(mfn, ((maddr & 0xfff) >> 3) as usize, fixed);
        Ok(fixed)
    }
}
