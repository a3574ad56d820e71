//! The guest-visible operations: pin/unpin, new_baseptr, mmu_update,
//! update_va_mapping and the domain builder's initial registration.
//!
//! Xen facts (`arch/x86/mm.c`, `pv/mm.c`):
//! * `MMUEXT_PIN_Lx_TABLE`: a frame outside the domain is -EINVAL; the type
//!   reference is taken first ("Error %d while pinning"), then a second pin is
//!   -EINVAL "already pinned" and drops what it took. `UNPIN` of an unpinned
//!   frame is -EINVAL "not pinned".
//! * `NEW_BASEPTR` to the current base is a no-op; otherwise it takes an L4 type
//!   reference on the new base before dropping the one on the old base.
//! * `mmu_update`: command = `ptr & 7` (0 normal, 1 machphys, 2 preserve A/D,
//!   3 no-translate = normal for PV; else -ENOSYS). A frame that is a validated
//!   pagetable goes through `mod_lN_entry`; any other frame is written plainly
//!   (Xen takes a transient writable type reference). `mod_lN_entry` checks the
//!   flags, then takes the fast path when only whitelisted flags change, else
//!   takes the new entry's reference before dropping the old one. L4 slots of the
//!   hypervisor area: -EINVAL "L4 update in Xen-private area".
//! * `update_va_mapping`: `va` must pass `__addr_ok`; the L1 is found by walking
//!   the current tables (L4, L3 present; L2 present without PSE), and must be a
//!   validated L1, else -EINVAL; then `mod_l1_entry`.

use crate::abi::{mmu, MmuUpdate};
use crate::event::Op;
use crate::frames::GuestFrames;
use crate::model::{Mfn, PageType, XenError};
use crate::pte::{table_index, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_PSE};
use crate::refs::Origin;
use crate::rules::{
    addr_ok, adjust_guest_l1e, adjust_guest_lne, global_kernel_page, has_changed_beyond_fastpath,
    is_xen_l4_slot, LN_DISALLOW,
};
use crate::validator::{ix, Validator};
use crate::xenlog::{
    self, c_alt_hex, hex5, msg, LINE_BAD_OWNER, LINE_L4_XEN_PRIVATE, LINE_MACHPHYS_UPDATE,
    LINE_MOD_BAD_FLAGS, LINE_NEW_BASEPTR, LINE_NEW_USER_BASEPTR, LINE_NORMAL_UPDATE,
};

/// `mmu_update` command bits: Xen masks `sizeof(l1_pgentry_t) - 1`.
const MMU_CMD_BITS: u64 = 7;

impl Validator {
    /// The domain builder's bootstrap tables: validate + pin the L4 and make it
    /// the current base.
    pub fn register_initial<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        l4: Mfn,
    ) -> Result<(), XenError> {
        let res = self.check_mem(mem).and_then(|()| {
            self.do_pin(mem, 4, l4)?;
            self.do_new_baseptr(mem, l4)
        });
        self.finish(Op::RegisterInitial { l4 }, &res);
        res
    }

    /// `MMUEXT_PIN_L{level}_TABLE`.
    pub fn pin<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        level: u32,
        mfn: Mfn,
    ) -> Result<(), XenError> {
        let res = self
            .check_mem(mem)
            .and_then(|()| self.do_pin(mem, level, mfn));
        let pfn = self.pfn_of(mfn);
        self.finish(Op::Pin { level, mfn, pfn }, &res);
        res
    }

    fn do_pin<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        level: u32,
        mfn: Mfn,
    ) -> Result<(), XenError> {
        let want = PageType::table(level)
            .ok_or_else(|| XenError::inval(format!("pin level {level} not in 1..=4")))?;
        if !self.in_domain(mfn) {
            return Err(XenError::inval(format!("mfn {mfn:x} outside the domain")));
        }
        if let Err(e) = self.get_page_type(mem, mfn, want, Origin::Pin) {
            self.log.push(xenlog::pin_error(e.errno(), mfn));
            return Err(e);
        }
        if self.frame(mfn).pinned() {
            self.log.push(xenlog::already_pinned(mfn));
            self.put_page_type(mem, mfn, want);
            return Err(XenError::inval(format!("mfn {mfn:x} already pinned")));
        }
        self.frame_mut(mfn).set_pinned(true);
        Ok(())
    }

    /// `MMUEXT_UNPIN_TABLE`.
    pub fn unpin<M: GuestFrames>(&mut self, mem: &mut M, mfn: Mfn) -> Result<(), XenError> {
        let res = self.check_mem(mem).and_then(|()| self.do_unpin(mem, mfn));
        let pfn = self.pfn_of(mfn);
        self.finish(Op::Unpin { mfn, pfn }, &res);
        res
    }

    fn do_unpin<M: GuestFrames>(&mut self, mem: &mut M, mfn: Mfn) -> Result<(), XenError> {
        if !self.in_domain(mfn) {
            self.log.push(msg(
                LINE_BAD_OWNER,
                format!("mfn {} bad, or bad owner d0", hex5(mfn)),
            ));
            return Err(XenError::inval(format!("mfn {mfn:x} outside the domain")));
        }
        if !self.frame(mfn).pinned() {
            self.log.push(xenlog::not_pinned(mfn));
            return Err(XenError::inval(format!("mfn {mfn:x} not pinned")));
        }
        self.frame_mut(mfn).set_pinned(false);
        let ty = self.frame(mfn).ty();
        self.put_page_type(mem, mfn, ty);
        Ok(())
    }

    /// `MMUEXT_NEW_BASEPTR`: requires (and references) an L4; drops the
    /// reference on the old base.
    pub fn new_baseptr<M: GuestFrames>(&mut self, mem: &mut M, mfn: Mfn) -> Result<(), XenError> {
        let old = self.base;
        let res = self
            .check_mem(mem)
            .and_then(|()| self.do_new_baseptr(mem, mfn));
        self.finish(Op::NewBaseptr { mfn, old }, &res);
        res
    }

    fn do_new_baseptr<M: GuestFrames>(&mut self, mem: &mut M, mfn: Mfn) -> Result<(), XenError> {
        if self.base == Some(mfn) {
            return Ok(());
        }
        if !self.in_domain(mfn) {
            return Err(XenError::inval(format!("mfn {mfn:x} outside the domain")));
        }
        if let Err(e) = self.get_page_type(mem, mfn, PageType::L4, Origin::Base) {
            self.log.push(msg(
                LINE_NEW_BASEPTR,
                format!("Error while installing new baseptr {}", hex5(mfn)),
            ));
            return Err(e);
        }
        if let Some(old) = self.base.replace(mfn) {
            self.put_page_type(mem, old, PageType::L4);
        }
        Ok(())
    }

    /// `MMUEXT_NEW_USER_BASEPTR`: the L4 a 64-bit PV guest runs its user mode on
    /// (Xen's `guest_table_user`); 0 means none. Takes the new L4's type reference
    /// before dropping the old one's, as Xen does.
    pub fn new_user_baseptr<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        mfn: Mfn,
    ) -> Result<(), XenError> {
        let old = self.user_base;
        let res = self.check_mem(mem).and_then(|()| {
            if old.unwrap_or(Mfn(0)) == mfn {
                return Ok(());
            }
            if mfn != Mfn(0) {
                if !self.in_domain(mfn) {
                    return Err(XenError::inval(format!("mfn {mfn:x} outside the domain")));
                }
                if let Err(e) = self.get_page_type(mem, mfn, PageType::L4, Origin::Base) {
                    self.log.push(msg(
                        LINE_NEW_USER_BASEPTR,
                        format!("Error {} installing new mfn {}", e.errno(), hex5(mfn)),
                    ));
                    return Err(e);
                }
            }
            self.user_base = (mfn != Mfn(0)).then_some(mfn);
            if let Some(o) = old {
                self.put_page_type(mem, o, PageType::L4);
            }
            Ok(())
        });
        self.finish(Op::NewUserBaseptr { mfn, old }, &res);
        res
    }

    /// One `mmu_update` request. Writes guest memory.
    #[inline]
    pub fn mmu_update<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        req: MmuUpdate,
    ) -> Result<(), XenError> {
        let cmd = req.ptr & MMU_CMD_BITS;
        if cmd == mmu::MACHPHYS_UPDATE {
            let mfn = Mfn(req.ptr >> 12);
            let res = self.do_machphys(mfn, req.val);
            self.finish(Op::MachphysUpdate { mfn, pfn: req.val }, &res);
            return res;
        }
        let ptr = req.ptr - cmd;
        let table = Mfn(ptr >> 12);
        let slot = ((ptr & 0xfff) >> 3) as usize;
        let level = Some(table)
            .filter(|&t| self.in_domain(t))
            .map(|t| self.frame(t))
            .filter(|f| f.ty().is_table() && f.validated())
            .map_or(0, |f| f.ty().level());
        let old = if self.in_domain(table) && mem.nr_frames() > table.0 {
            mem.read_entry(table, slot)
        } else {
            0
        };
        let mut new = old;
        let res = self
            .check_mem(mem)
            .and_then(|()| self.do_mmu_update(mem, cmd, table, slot, level, old, req.val))
            .map(|stored| new = stored);
        self.finish(
            Op::MmuUpdate {
                ptr: req.ptr,
                val: req.val,
                table,
                slot: slot as u16,
                level,
                old,
                new,
            },
            &res,
        );
        res
    }

    /// Batch: stops at the first failure; returns (done, result).
    pub fn mmu_update_batch<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        reqs: &[MmuUpdate],
    ) -> (usize, Result<(), XenError>) {
        for (i, r) in reqs.iter().enumerate() {
            if let Err(e) = self.mmu_update(mem, *r) {
                return (i, Err(e));
            }
        }
        (reqs.len(), Ok(()))
    }

    fn do_machphys(&mut self, mfn: Mfn, pfn: u64) -> Result<(), XenError> {
        if !self.in_domain(mfn) {
            self.log.push(msg(
                LINE_MACHPHYS_UPDATE,
                "Could not get page for mach->phys update".into(),
            ));
            return Err(XenError::inval(format!("mfn {mfn:x} outside the domain")));
        }
        let i = ix(mfn);
        if self.m2p.len() <= i {
            self.m2p.resize(i + 1, u64::MAX);
        }
        self.m2p[i] = pfn;
        Ok(())
    }

    /// Returns the value stored. `old` is the entry's current value (read by
    /// the caller when `table` is inside the domain).
    #[allow(clippy::too_many_arguments)]
    fn do_mmu_update<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        cmd: u64,
        table: Mfn,
        slot: usize,
        level: u32,
        old: u64,
        val: u64,
    ) -> Result<u64, XenError> {
        match cmd {
            mmu::NORMAL_PT_UPDATE | mmu::PT_UPDATE_PRESERVE_AD | mmu::PT_UPDATE_NO_TRANSLATE => {}
            _ => return Err(XenError::NoSys),
        }
        if !self.in_domain(table) {
            self.log.push(msg(
                LINE_NORMAL_UPDATE,
                "Could not get page for normal update".into(),
            ));
            return Err(XenError::inval(format!("mfn {table:x} outside the domain")));
        }
        let preserve_ad = cmd == mmu::PT_UPDATE_PRESERVE_AD;
        match level {
            0 => {
                // Not a pagetable: a plain write, like Xen's writable-page path. A descriptor
                // page in use matches none of do_mmu_update's type cases: -EINVAL, nothing
                // logged.
                let f = self.frame(table);
                if f.ty() == PageType::SegDesc && f.count() > 0 {
                    return Err(XenError::inval("mmu_update into a descriptor page"));
                }
                mem.write_entry(table, slot, val);
                Ok(val)
            }
            1 => self.mod_l1_entry(mem, table, slot, old, val, preserve_ad),
            _ => self.mod_ln_entry(mem, level, table, slot, old, val, preserve_ad),
        }
    }

    /// `mod_l1_entry`: replaces entry `slot` of L1 `l1`, currently `old`, by
    /// `new`. Returns the value stored.
    pub(crate) fn mod_l1_entry<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        l1: Mfn,
        slot: usize,
        old: u64,
        new: u64,
        preserve_ad: bool,
    ) -> Result<u64, XenError> {
        let mut new = new;
        if new & _PAGE_PRESENT != 0 {
            if new & self.rules.l1_disallow != 0 {
                // Checked (and logged) on the guest's value, before the fast path,
                // as in Xen.
                return Err(self.bad_flags(LINE_MOD_BAD_FLAGS[1], 1, new, self.rules.l1_disallow));
            }
            if global_kernel_page(new) {
                self.log.push(xenlog::global_kernel_page(new));
            }
            // The fast path compares, and the write stores, the adjusted value.
            new = adjust_guest_l1e(new);
            if !has_changed_beyond_fastpath(old, new) {
                return Ok(write_entry(mem, l1, slot, old, new, preserve_ad));
            }
            self.get_page_from_l1e(mem, l1, slot, new)?;
        }
        let stored = write_entry(mem, l1, slot, old, new, preserve_ad);
        self.put_page_from_l1e(mem, old);
        Ok(stored)
    }

    /// `mod_l{2,3,4}_entry`, like [`Validator::mod_l1_entry`].
    #[allow(clippy::too_many_arguments)]
    fn mod_ln_entry<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        level: u32,
        p: Mfn,
        slot: usize,
        old: u64,
        new: u64,
        preserve_ad: bool,
    ) -> Result<u64, XenError> {
        if level == 4 && is_xen_l4_slot(slot) {
            self.log.push(msg(
                LINE_L4_XEN_PRIVATE,
                format!(
                    "L4 update in Xen-private area, slot {}",
                    c_alt_hex(slot as u64)
                ),
            ));
            return Err(XenError::inval(format!("L4 slot {slot} is Xen's")));
        }
        let mut new = new;
        if new & _PAGE_PRESENT != 0 {
            if new & LN_DISALLOW != 0 {
                return Err(self.bad_flags(
                    LINE_MOD_BAD_FLAGS[level as usize],
                    level,
                    new,
                    LN_DISALLOW,
                ));
            }
            new = adjust_guest_lne(level, new);
            if !has_changed_beyond_fastpath(old, new) {
                return Ok(write_entry(mem, p, slot, old, new, preserve_ad));
            }
            self.get_page_from_lne(mem, level, p, slot, new)?;
        }
        let stored = write_entry(mem, p, slot, old, new, preserve_ad);
        self.put_page_from_lne(mem, level, p, old);
        Ok(stored)
    }

    /// Writes the L1 entry mapping `va` in the current base's tables. Flags are
    /// not interpreted here (the caller performs the TLB flush they ask for;
    /// Xen, too, looks at them only after a successful update).
    pub fn update_va_mapping<M: GuestFrames>(
        &mut self,
        mem: &mut M,
        va: u64,
        val: u64,
        flags: u64,
    ) -> Result<(), XenError> {
        let mut target: Option<(Mfn, usize)> = None;
        let mut old = 0;
        let mut new = 0;
        let res = self.check_mem(mem).and_then(|()| {
            let (l1, slot) = self.resolve_l1(mem, va)?;
            target = Some((l1, slot));
            old = mem.read_entry(l1, slot);
            new = old;
            new = self.mod_l1_entry(mem, l1, slot, old, val, false)?;
            Ok(())
        });
        self.finish(
            Op::UpdateVaMapping {
                va,
                val,
                flags,
                l1: target.map(|t| t.0),
                slot: target.map_or(0, |t| t.1 as u16),
                old,
                new,
            },
            &res,
        );
        res
    }

    /// Xen's `map_guest_l1e` + the L1 type check of `__do_update_va_mapping`.
    fn resolve_l1<M: GuestFrames>(&self, mem: &M, va: u64) -> Result<(Mfn, usize), XenError> {
        let no_l1 = || XenError::inval(format!("no L1 maps va {va:x}"));
        let base = self
            .base
            .ok_or_else(|| XenError::inval("no base pointer"))?;
        if !addr_ok(va) {
            return Err(XenError::inval(format!("va {va:x} not a guest address")));
        }
        let mut table = base;
        for level in [4u32, 3, 2] {
            let e = mem.read_entry(table, table_index(va, level));
            let ok = if level == 2 {
                e & (_PAGE_PRESENT | _PAGE_PSE) == _PAGE_PRESENT
            } else {
                e & _PAGE_PRESENT != 0
            };
            if !ok || !self.in_domain(Mfn::of_pte(e)) {
                return Err(no_l1());
            }
            table = Mfn::of_pte(e);
        }
        let f = self.frame(table);
        if f.ty() != PageType::L1 || !f.validated() {
            return Err(no_l1());
        }
        Ok((table, table_index(va, 1)))
    }
}

/// Writes `new`, OR-ing in the current A/D bits for `MMU_PT_UPDATE_PRESERVE_AD`;
/// returns the value written.
fn write_entry<M: GuestFrames>(
    mem: &mut M,
    t: Mfn,
    slot: usize,
    old: u64,
    new: u64,
    preserve_ad: bool,
) -> u64 {
    let v = if preserve_ad {
        new | (old & (_PAGE_ACCESSED | _PAGE_DIRTY))
    } else {
        new
    };
    mem.write_entry(t, slot, v);
    v
}
