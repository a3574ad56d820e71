//! Reference counting: `get_page_type` / `put_page_type` (the one place that
//! enforces the type rules) and the references taken by pagetable entries.
//! Whole-table validation / devalidation is in `tables/`.
//!
//! Xen facts this follows (`arch/x86/mm.c`, 4.17 semantics):
//! * A frame's type changes only while its type count is 0 ("Bad type", -EINVAL).
//!   The first reference of a pagetable type validates the frame; the last one
//!   devalidates it, releasing every entry's reference.
//! * L1 entries: `get_page_from_l1e` — bad flags -EINVAL, a frame outside the
//!   domain -EPERM (unprivileged MMIO), RW = writable type ref (else -EBUSY,
//!   "Could not get page type PGT_writable_page"), RO = general ref only.
//! * L2/L3/L4 entries: a type ref of the next lower level; if that fails with
//!   -EINVAL, Xen tries a *linear* pagetable (`get_lN_linear_pagetable`): only
//!   read-only, free for a self-reference, otherwise the target must be an
//!   already-validated table of the same level, and a table may not both hold
//!   linear entries and be the target of one (`linear_pt_count`, XSA-240).
//! * Validation failure at slot i releases slots 0..i (`promote_lN_table`), so a
//!   failed operation changes no count. We keep that exact: a frame's type is
//!   reset to `None` when its count drops to 0 (Xen keeps the stale type bits;
//!   nothing observable depends on them).
//!
//! * Every type reference comes with a general reference (`get_page` before
//!   `get_page_type` in Xen). Here [`Validator::get_page_type`] takes both and
//!   [`Validator::put_page_type`] drops both; only RO L1 entries take a general
//!   reference alone ([`Validator::get_untyped_ref`]). The general count is
//!   derived, not stored (see `model::Frame`).
//!
//! Recursion depth is bounded: validation descends one level per step (L4→L1),
//! and a linear entry never validates anything. Devalidation of a linear
//! target can only recurse downward, because a table used as a linear target can
//! hold no linear entries itself.

use crate::event::{StrayMapping, Violation, ViolationKind};
use crate::frames::GuestFrames;
use crate::model::{Mfn, PageType, Policy, XenError, MAX_TYPE_COUNT, MAX_UNTYPED};
use crate::pte::{_PAGE_PRESENT, _PAGE_RW};
use crate::rules::{xen_flags, LN_DISALLOW};
use crate::validator::Validator;
use crate::xenlog::{
    self, hex5, msg, LINE_GET_L1_BAD_FLAGS, LINE_GET_LN_BAD_FLAGS, LINE_LINEAR, LINE_MMIO,
};

/// Who asks for a type reference (for provenance of refused writable mappings).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Origin {
    Pin,
    Base,
    /// Entry `slot` of table `table` with value `pte`.
    Entry {
        table: Mfn,
        slot: u16,
        pte: u64,
    },
}

#[inline]
fn present(e: u64) -> bool {
    e & _PAGE_PRESENT != 0
}

impl Validator {
    /// Takes a general reference without a type reference (`get_page`, as an RO
    /// L1 entry does).
    #[inline]
    pub(crate) fn get_untyped_ref(&mut self, t: Mfn) -> Result<(), XenError> {
        let u = self.untyped_mut(t);
        if *u >= MAX_UNTYPED {
            return Err(XenError::inval("reference count overflow"));
        }
        *u += 1;
        Ok(())
    }

    /// Drops a general reference taken by [`Validator::get_untyped_ref`] (`put_page`).
    #[inline]
    pub(crate) fn put_untyped_ref(&mut self, t: Mfn) {
        let u = self.untyped_mut(t);
        *u = u.saturating_sub(1);
    }

    /// Xen's `get_page` + `get_page_type`: one more general and type reference
    /// of type `want` on frame `t`; on failure neither is taken. A first
    /// pagetable reference validates the frame, which writes Xen's adjusted
    /// entries back (hence `&mut M`).
    #[inline(always)]
    pub(crate) fn get_page_type<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        t: Mfn,
        want: PageType,
        origin: Origin,
    ) -> Result<(), XenError> {
        if self.frame_mut(t).try_get_type_fast(want) {
            return Ok(());
        }
        if want == PageType::Writable {
            return self.get_writable_slow(mem, t, origin);
        }
        self.get_table_type_slow(mem, t, want)
    }

    /// `get_page` + `get_page_type(PGT_writable_page)`: never validates anything, so guest
    /// memory is only read (for provenance).
    #[inline(always)]
    pub(crate) fn get_writable_type<M: GuestFrames>(
        &mut self,
        mem: &M,
        t: Mfn,
        origin: Origin,
    ) -> Result<(), XenError> {
        if self.frame_mut(t).try_get_type_fast(PageType::Writable) {
            return Ok(());
        }
        self.get_writable_slow(mem, t, origin)
    }

    #[cold]
    #[inline(never)]
    fn get_writable_slow<M: GuestFrames>(
        &mut self,
        mem: &M,
        t: Mfn,
        origin: Origin,
    ) -> Result<(), XenError> {
        let want = PageType::Writable;
        let f = self.frame(t);
        if f.count() == 0 {
            let fm = self.frame_mut(t);
            fm.set_ty(want);
            fm.set_count(1);
            fm.set_validated(true);
            return Ok(());
        }
        if f.ty() == want {
            return Err(self.type_count_overflow(t));
        }
        // A writable mapping of a pagetable. Xen logs the mismatch, then
        // get_page_from_l1e adds "Could not get page type".
        self.log_bad_type(f, want, t);
        self.record_writable_of_pagetable(mem, t, origin);
        let audit = self.policy == Policy::Audit;
        let c = self.cold_mut(t);
        if audit && c.tolerated < u16::MAX {
            c.tolerated += 1;
            return Ok(());
        }
        Err(XenError::inval("writable mapping of a pagetable"))
    }

    #[cold]
    #[inline(never)]
    fn get_table_type_slow<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        t: Mfn,
        want: PageType,
    ) -> Result<(), XenError> {
        let f = self.frame(t);
        if f.count() == 0 {
            // Type change: the frame takes the new type and is validated now.
            let fm = self.frame_mut(t);
            fm.set_ty(want);
            fm.set_count(1);
            fm.set_validated(false);
            let validated = if want == PageType::SegDesc {
                self.validate_segdesc(mem, t)
            } else {
                self.validate_table(mem, t, want.level())
            };
            return match validated {
                Ok(()) => {
                    self.frame_mut(t).set_validated(true);
                    Ok(())
                }
                Err(e) => {
                    self.drop_to_zero(t);
                    Err(e)
                }
            };
        }
        if f.ty() == want {
            if !f.validated() {
                // Only a table under validation in this very operation; Xen would
                // wait for it, which single-threaded means never succeeding.
                return Err(XenError::inval("frame is being validated"));
            }
            return Err(self.type_count_overflow(t));
        }
        // Type conflict. Don't log what could be a linear-pagetable attempt (Xen
        // stays silent for these three combinations too).
        let recursive = matches!(
            (f.ty(), want),
            (PageType::L2, PageType::L1)
                | (PageType::L3, PageType::L2)
                | (PageType::L4, PageType::L3)
        );
        if recursive {
            return Err(XenError::inval("linear pagetable candidate"));
        }
        self.log_bad_type(f, want, t);
        if f.ty() == PageType::Writable {
            // The stray-RW case: still mapped writable somewhere (a pagetable
            // or descriptor page to be).
            self.record_stray_writable(mem, t, want);
            if self.policy == Policy::Audit {
                // Tolerate the existing writable references and type the frame.
                let Ok(tolerated) = u16::try_from(f.count()) else {
                    return Err(XenError::inval("too many writable mappings to tolerate"));
                };
                self.cold_mut(t).tolerated = tolerated;
                let fm = self.frame_mut(t);
                fm.set_count(0);
                fm.set_ty(PageType::None);
                fm.set_validated(false);
                return self.get_table_type_slow(mem, t, want);
            }
        }
        Err(XenError::inval("bad type"))
    }

    #[cold]
    pub(crate) fn log_bad_type(&mut self, f: crate::model::Frame, want: PageType, t: Mfn) {
        self.log.push(xenlog::bad_type(
            f.xen_type_info(),
            want.xen_bits(),
            t,
            self.pfn_or_invalid(t),
        ));
    }

    #[cold]
    fn type_count_overflow(&mut self, t: Mfn) -> XenError {
        self.log.push(msg(
            xenlog::LINE_TYPE_COUNT_OVERFLOW,
            format!("Type count overflow on mfn {}", hex5(t)),
        ));
        XenError::inval("type count overflow")
    }

    /// The type count reached 0: the frame loses its type. Writable mappings
    /// tolerated under audit become ordinary writable references again.
    fn drop_to_zero(&mut self, t: Mfn) {
        let tolerated = std::mem::take(&mut self.cold_mut(t).tolerated);
        let f = self.frame_mut(t);
        if tolerated > 0 {
            f.set_ty(PageType::Writable);
            f.set_count(u32::from(tolerated));
            f.set_validated(true);
        } else {
            f.set_ty(PageType::None);
            f.set_count(0);
            f.set_validated(false);
        }
    }

    /// Xen's `put_page_type` + `put_page` for a reference of type `ty` taken
    /// earlier by [`Validator::get_page_type`].
    #[inline(always)]
    pub(crate) fn put_page_type<M: GuestFrames>(&mut self, mem: &M, t: Mfn, ty: PageType) {
        let f = self.frame_mut(t);
        // Hot case: not the last reference of the frame's own type.
        if f.count() > 1 && f.ty() == ty {
            f.ti -= 1;
            return;
        }
        // Last writable reference (a Writable frame has nothing tolerated).
        if f.ti == PageType::Writable.ti_validated() | 1 && ty == PageType::Writable {
            f.ti = 0;
            return;
        }
        self.put_page_type_slow(mem, t, ty);
    }

    #[inline(never)]
    fn put_page_type_slow<M: GuestFrames>(&mut self, mem: &M, t: Mfn, ty: PageType) {
        let f = self.frame_mut(t);
        if ty == PageType::Writable && f.ty() != PageType::Writable {
            // A writable mapping tolerated under audit goes away.
            let c = self.cold_mut(t);
            c.tolerated = c.tolerated.saturating_sub(1);
            return;
        }
        match f.count() {
            0 => {} // inconsistent caller; never underflow
            1 => {
                f.set_count(0);
                let level = f.ty().level();
                if level != 0 {
                    f.set_validated(false);
                    self.devalidate_table(mem, t, level);
                } else if f.ty() == PageType::SegDesc {
                    // Descriptors hold no references.
                    f.set_validated(false);
                }
                self.drop_to_zero(t);
            }
            _ => f.ti -= 1,
        }
    }

    /// `get_page_from_l1e`: the references a present L1 entry `e` takes.
    #[inline(always)]
    pub(crate) fn get_page_from_l1e<M: GuestFrames>(
        &mut self,
        mem: &M,
        l1: Mfn,
        slot: usize,
        e: u64,
    ) -> Result<(), XenError> {
        if e & self.rules.l1_disallow != 0 {
            return Err(self.bad_flags(LINE_GET_L1_BAD_FLAGS, 1, e, self.rules.l1_disallow));
        }
        let t = Mfn::of_pte(e);
        if !self.in_domain(t) {
            // Xen's own pages shared with the guest (`share_xen_page_with_guest`:
            // shared_info) may be mapped, RW too; they never become pagetables.
            if self.xen_shared.contains(&t) {
                return Ok(());
            }
            return Err(self.not_our_frame(t));
        }
        if e & _PAGE_RW == 0 {
            return self.get_untyped_ref(t);
        }
        let origin = Origin::Entry {
            table: l1,
            slot: slot as u16,
            pte: e,
        };
        if self.get_writable_type(mem, t, origin).is_err() {
            return Err(self.could_not_get_writable(t, e));
        }
        Ok(())
    }

    /// `put_page_from_l1e`.
    #[inline]
    pub(crate) fn put_page_from_l1e<M: GuestFrames>(&mut self, mem: &M, e: u64) {
        if !present(e) {
            return;
        }
        let t = Mfn::of_pte(e);
        if !self.in_domain(t) {
            return;
        }
        if e & _PAGE_RW != 0 {
            self.put_page_type(mem, t, PageType::Writable);
        } else {
            self.put_untyped_ref(t);
        }
    }

    /// `get_page_from_l{2,3,4}e`: entry `e` in slot `slot` of table `p` (level
    /// `level`) takes a type reference of level-1, or is a linear entry.
    pub(crate) fn get_page_from_lne<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        level: u32,
        p: Mfn,
        slot: usize,
        e: u64,
    ) -> Result<(), XenError> {
        if e & LN_DISALLOW != 0 {
            return Err(self.bad_flags(
                LINE_GET_LN_BAD_FLAGS[level as usize],
                level,
                e,
                LN_DISALLOW,
            ));
        }
        let t = Mfn::of_pte(e);
        let lower = PageType::table(level - 1).expect("level 2..=4");
        let first = if self.in_domain(t) {
            let origin = Origin::Entry {
                table: p,
                slot: slot as u16,
                pte: e,
            };
            match self.get_page_type(mem, t, lower, origin) {
                Ok(()) => return Ok(()),
                Err(err) => err,
            }
        } else {
            XenError::inval(format!("mfn {t:x} outside the domain"))
        };
        match first {
            XenError::Inval(_) if self.get_linear(level, p, t, e) => Ok(()),
            err => Err(err),
        }
    }

    /// `get_lN_linear_pagetable`: true if entry `e` of table `p` may be a linear
    /// entry to `t` (references taken).
    fn get_linear(&mut self, level: u32, p: Mfn, t: Mfn, e: u64) -> bool {
        if !self.rules.linear_pt {
            self.log.push(msg(
                LINE_LINEAR[level as usize],
                "Attempt to create linear p.t. (feature disabled)".into(),
            ));
            return false;
        }
        if e & _PAGE_RW != 0 {
            self.log.push(msg(
                LINE_LINEAR[level as usize],
                "Attempt to create linear p.t. with write perms".into(),
            ));
            return false;
        }
        if t == p {
            return true;
        }
        if !self.in_domain(t) {
            return false;
        }
        let same = PageType::table(level);
        let (pl, tl) = (self.cold(p).linear, self.cold(t).linear);
        let tf = self.frame(t);
        let ok = (0..i16::MAX).contains(&pl)
            && tl <= 0
            && tl > i16::MIN
            && Some(tf.ty()) == same
            && tf.validated()
            && tf.count() < MAX_TYPE_COUNT;
        if ok {
            self.cold_mut(p).linear += 1;
            self.cold_mut(t).linear -= 1;
            self.frame_mut(t).ti += 1;
        }
        ok
    }

    /// `put_page_from_l{2,3,4}e`.
    pub(crate) fn put_page_from_lne<M: GuestFrames>(
        &mut self,
        mem: &M,
        level: u32,
        p: Mfn,
        e: u64,
    ) {
        if !present(e) {
            return;
        }
        let t = Mfn::of_pte(e);
        if t == p || !self.in_domain(t) {
            return;
        }
        let same = PageType::table(level).expect("level 2..=4");
        if self.frame(t).ty() == same {
            // A linear entry.
            let pc = self.cold_mut(p);
            pc.linear = pc.linear.saturating_sub(1).max(0);
            let tc = self.cold_mut(t);
            tc.linear = tc.linear.saturating_add(1).min(0);
            self.put_page_type(mem, t, same);
        } else {
            let lower = PageType::table(level - 1).expect("level 2..=4");
            self.put_page_type(mem, t, lower);
        }
    }

    /// "Bad Lx flags": `line` is the checking function's (`get_page_from_lNe`
    /// during validation, `mod_lN_entry` on an update).
    #[cold]
    pub(crate) fn bad_flags(&mut self, line: u32, level: u32, e: u64, mask: u64) -> XenError {
        let bad = xen_flags(e & mask);
        self.log
            .push(msg(line, format!("Bad L{level} flags {bad:x}")));
        XenError::inval(format!("bad L{level} flags {bad:x}"))
    }

    #[cold]
    fn not_our_frame(&mut self, t: Mfn) -> XenError {
        self.log.push(msg(
            LINE_MMIO,
            format!("d0 non-privileged attempt to map MMIO space {}", hex5(t)),
        ));
        XenError::Perm
    }

    #[cold]
    fn could_not_get_writable(&mut self, t: Mfn, e: u64) -> XenError {
        self.log.push(xenlog::no_writable_type());
        self.log
            .push(xenlog::error_getting_mfn(t, self.pfn_or_invalid(t), e));
        XenError::Busy(format!("mfn {t:x} is a pagetable; RW mapping refused"))
    }

    /// Records (with provenance) that `t` must become a pagetable but is still
    /// mapped writable.
    #[cold]
    fn record_stray_writable<M: GuestFrames>(&mut self, mem: &M, t: Mfn, want: PageType) {
        let mappings = self.writable_mappings(mem, t);
        let f = self.frame(t);
        self.violations.push(Violation {
            kind: ViolationKind::StrayWritable,
            frame: t,
            pfn: self.pfn_of(t),
            had: f.ty(),
            wanted: want,
            frame_pinned: f.pinned(),
            tolerated: self.policy == Policy::Audit,
            mappings,
        });
    }

    /// Records (with provenance) a refused writable mapping of pagetable `t`.
    #[cold]
    fn record_writable_of_pagetable<M: GuestFrames>(&mut self, mem: &M, t: Mfn, origin: Origin) {
        let mut mappings = Vec::new();
        if let Origin::Entry { table, slot, pte } = origin {
            let (vas, more_vas) = self.vas_of_slot(mem, table, slot);
            mappings.push(StrayMapping {
                l1: table,
                slot,
                pte,
                vas,
                more_vas,
                requested: true,
            });
        }
        let f = self.frame(t);
        self.violations.push(Violation {
            kind: ViolationKind::WritableMappingOfPagetable,
            frame: t,
            pfn: self.pfn_of(t),
            had: f.ty(),
            wanted: PageType::Writable,
            frame_pinned: f.pinned(),
            tolerated: self.policy == Policy::Audit,
            mappings,
        });
    }
}
