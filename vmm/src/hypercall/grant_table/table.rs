//! The grant table itself: its shared and status frames, and the sub-ops that serve it
//! (setup_table, query_size, set_version, get_version, get_status_frames).

use super::{
    is_us_any, status_frames_for, ENTRY_V1_SIZE, ENTRY_V2_SIZE, GTF_READING_WRITING,
    STATUS_PER_FRAME,
};
use crate::hypercall::{err, handle_okay, Ctx, Hypervisor};
use crate::pv::xen_area::{XenLayout, GNTTAB_MAX_FRAMES, GNTTAB_MAX_STATUS_FRAMES};
use pagetable_validator::abi::errno;
use pagetable_validator::abi::gnttab::*;
use pagetable_validator::pte::PAGE_SIZE;
use pagetable_validator::Mfn;
use std::mem::offset_of;
use vm_memory::ByteValued;

impl Hypervisor {
    /// Guest-physical address of byte `off` of the grant table's shared area.
    fn gnt_shared_gpa(&self, off: u64) -> u64 {
        (self.xen.gnttab_shared_mfn(off / PAGE_SIZE) << 12) | (off % PAGE_SIZE)
    }
    fn gnt_status_gpa(&self, i: u64) -> u64 {
        (self.xen.gnttab_status_mfn(i / STATUS_PER_FRAME) << 12) | ((i % STATUS_PER_FRAME) * 2)
    }
    pub(super) fn gnt_read_shared(&self, off: u64, buf: &mut [u8]) {
        let ok = self.ram.read_phys(self.gnt_shared_gpa(off), buf);
        debug_assert!(ok, "grant frames lie in the Xen area");
    }
    pub(super) fn gnt_write_shared(&self, off: u64, buf: &[u8]) {
        let ok = self.ram.write_phys(self.gnt_shared_gpa(off), buf);
        debug_assert!(ok, "grant frames lie in the Xen area");
    }
    pub(super) fn gnt_status(&self, i: u64) -> u16 {
        let mut b = [0u8; 2];
        self.ram.read_phys(self.gnt_status_gpa(i), &mut b);
        u16::from_le_bytes(b)
    }
    pub(super) fn gnt_set_status(&self, i: u64, v: u16) {
        self.ram
            .write_phys(self.gnt_status_gpa(i), &v.to_le_bytes());
    }
    fn gnt_clear_frame(&self, mfn: u64) {
        self.ram.write_phys(mfn << 12, &[0u8; PAGE_SIZE as usize]);
    }

    /// `gnttab_populate_status_frames`: status frames for `req` shared frames, cleared and
    /// shared with the guest.
    fn gnt_populate_status(&mut self, req: u32) {
        let want = status_frames_for(req).min(GNTTAB_MAX_STATUS_FRAMES as u32);
        for i in self.gnttab.nr_status_frames..want {
            let mfn = self.xen.gnttab_status_mfn(u64::from(i));
            self.gnt_clear_frame(mfn);
            self.validator.share_xen_frame(Mfn(mfn));
        }
        self.gnttab.nr_status_frames = self.gnttab.nr_status_frames.max(want);
    }

    /// `gnttab_grow_table(d, req)`; `req` ≤ [`GNTTAB_MAX_FRAMES`] (checked by the caller).
    pub(crate) fn gnt_grow(&mut self, req: u32) {
        let req = req.clamp(1, GNTTAB_MAX_FRAMES as u32);
        for i in self.gnttab.nr_frames..req {
            self.gnt_clear_frame(self.xen.gnttab_shared_mfn(u64::from(i)));
        }
        if self.gnttab.version > 1 {
            self.gnt_populate_status(req);
        }
        for i in self.gnttab.nr_frames..req {
            self.validator
                .share_xen_frame(Mfn(self.xen.gnttab_shared_mfn(u64::from(i))));
        }
        self.gnttab.nr_frames = self.gnttab.nr_frames.max(req);
    }

    /// `gnttab_setup_table` (`limit_max` = UINT_MAX from the hypercall).
    pub(super) fn gnttab_setup_table(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> i64 {
        if count != 1 {
            return err(errno::EINVAL);
        }
        let GnttabSetupTable {
            dom,
            nr_frames: nr,
            frame_list: list,
            ..
        } = match self.gnt_read(ctx, uop, "setup_table") {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        if !handle_okay(list) {
            return err(errno::EFAULT);
        }
        let status = if !is_us_any(dom) {
            GNTST_BAD_DOMAIN
        } else if u64::from(nr) > GNTTAB_MAX_FRAMES {
            // "d0 is limited to 64 grant-table frames"
            GNTST_GENERAL_ERROR
        } else {
            if nr > self.gnttab.nr_frames
                || (self.gnttab.version > 1 && status_frames_for(nr) > self.gnttab.nr_status_frames)
            {
                self.gnt_grow(nr);
            }
            self.gnt_frame_list(ctx, list, nr, XenLayout::gnttab_shared_mfn)
        };
        match self.gnt_put_status::<GnttabSetupTable>(ctx, uop, status, "setup_table") {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }

    /// `gnttab_query_size`: the whole structure is copied back, as Xen does.
    pub(super) fn gnttab_query_size(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> i64 {
        if count != 1 {
            return err(errno::EINVAL);
        }
        let mut op: GnttabQuerySize = match self.gnt_read(ctx, uop, "query_size") {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        op.status = if is_us_any(op.dom) {
            op.nr_frames = self.gnttab.nr_frames;
            op.max_nr_frames = GNTTAB_MAX_FRAMES as u32;
            GNTST_OKAY
        } else {
            GNTST_BAD_DOMAIN
        };
        match self.gnt_write(ctx, uop, op.as_slice(), "query_size") {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }

    /// `gnttab_set_version` (the count is not looked at, as in Xen).
    pub(super) fn gnttab_set_version(&mut self, ctx: &mut Ctx, uop: u64) -> i64 {
        let want = match self.gnt_read::<GnttabSetVersion>(ctx, uop, "set_version") {
            Ok(op) => op.version,
            Err(rc) => return rc,
        };
        let res = if want != 1 && want != 2 {
            err(errno::EINVAL)
        } else if want == self.gnttab.version {
            0
        } else {
            // Xen's max_version for dom0 is opt_gnttab_max_version = 2, and no entry is ever
            // pinned here, so the in-use check always passes.
            self.gnt_switch_version(want)
        };
        let op = GnttabSetVersion {
            version: self.gnttab.version,
        };
        match self.gnt_write(ctx, uop, op.as_slice(), "set_version") {
            Ok(()) => res,
            Err(rc) => rc,
        }
    }

    /// The version switch of `gnttab_set_version`, the first 8 entries preserved.
    fn gnt_switch_version(&mut self, want: u32) -> i64 {
        let reserved = u64::from(GNTTAB_NR_RESERVED_ENTRIES);
        // (flags, domid, frame) of each reserved entry in v1 terms.
        let mut keep = [(0u16, 0u16, 0u64); GNTTAB_NR_RESERVED_ENTRIES as usize];
        if self.gnttab.version == 1 {
            self.gnt_populate_status(self.gnttab.nr_frames);
            for (i, k) in keep.iter_mut().enumerate() {
                let mut e = GrantEntryV1::default();
                self.gnt_read_shared(i as u64 * ENTRY_V1_SIZE, e.as_mut_slice());
                *k = (e.flags, e.domid, u64::from(e.frame));
            }
        } else {
            let mut entries = [GrantEntryV2::default(); GNTTAB_NR_RESERVED_ENTRIES as usize];
            for (i, e) in entries.iter_mut().enumerate() {
                self.gnt_read_shared(i as u64 * ENTRY_V2_SIZE, e.as_mut_slice());
                match e.flags & GTF_TYPE_MASK {
                    GTF_PERMIT_ACCESS if e.frame >> 32 == 0 => {}
                    // "tried to change grant table version to 1 with non-representable
                    // entries"
                    GTF_PERMIT_ACCESS | GTF_TRANSITIVE => return err(errno::ERANGE),
                    _ => {}
                }
            }
            for (i, (e, k)) in entries.iter().zip(keep.iter_mut()).enumerate() {
                *k = match e.flags & GTF_TYPE_MASK {
                    GTF_PERMIT_ACCESS => (e.flags | self.gnt_status(i as u64), e.domid, e.frame),
                    // GTF_invalid, and (after "bad flags ... when switching version") the rest.
                    _ => (0, 0, 0),
                };
            }
            // gnttab_unpopulate_status_frames: Xen refuses with -EBUSY while the guest still
            // maps a status frame; the validator keeps no count of mappings of Xen frames, so
            // the frames stay shared (and are cleared when populated again) and the switch
            // always succeeds.
            self.gnttab.nr_status_frames = 0;
        }
        for i in 0..u64::from(self.gnttab.nr_frames) {
            self.gnt_clear_frame(self.xen.gnttab_shared_mfn(i));
        }
        for (i, &(flags, dom, frame)) in keep.iter().enumerate() {
            let i = i as u64;
            if want == 1 {
                let e = GrantEntryV1 {
                    flags,
                    domid: dom,
                    frame: frame as u32,
                };
                self.gnt_write_shared(i * ENTRY_V1_SIZE, e.as_slice());
            } else {
                self.gnt_set_status(i, flags & GTF_READING_WRITING);
                let e = GrantEntryV2 {
                    flags: flags & !GTF_READING_WRITING,
                    domid: dom,
                    pad0: 0,
                    frame,
                };
                self.gnt_write_shared(i * ENTRY_V2_SIZE, e.as_slice());
            }
        }
        debug_assert!(reserved * ENTRY_V2_SIZE <= PAGE_SIZE);
        self.gnttab.version = want;
        0
    }

    /// `gnttab_get_version`.
    pub(super) fn gnttab_get_version(&mut self, ctx: &mut Ctx, uop: u64) -> i64 {
        let op: GnttabGetVersion = match self.gnt_read(ctx, uop, "get_version") {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        if !is_us_any(op.dom) {
            return err(errno::ESRCH);
        }
        // `__copy_field_to_guest(uop, &op, version)`.
        let v = self.gnttab.version.to_le_bytes();
        let at = uop + offset_of!(GnttabGetVersion, version) as u64;
        match self.gnt_write(ctx, at, &v, "get_version") {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }

    /// `gnttab_get_status_frames`.
    pub(super) fn gnttab_get_status_frames(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> i64 {
        if count != 1 {
            return err(errno::EINVAL);
        }
        let GnttabGetStatusFrames {
            nr_frames: nr,
            dom,
            frame_list: list,
            ..
        } = match self.gnt_read(ctx, uop, "get_status_frames") {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        if !handle_okay(list) {
            return err(errno::EFAULT);
        }
        let status = if !is_us_any(dom) {
            GNTST_BAD_DOMAIN
        } else if nr > self.gnttab.nr_status_frames {
            GNTST_GENERAL_ERROR
        } else {
            self.gnt_frame_list(ctx, list, nr, XenLayout::gnttab_status_mfn)
        };
        match self.gnt_put_status::<GnttabGetStatusFrames>(ctx, uop, status, "get_status_frames") {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }
}

impl Hypervisor {
    /// Writes the mfns of frames `0..nr` (`mfn_of`) to the guest's list at `list`, as
    /// setup_table and get_status_frames do: an unwritable element is GNTST_bad_virt_addr,
    /// the others are still written.
    fn gnt_frame_list(
        &mut self,
        ctx: &Ctx,
        list: u64,
        nr: u32,
        mfn_of: fn(&XenLayout, u64) -> u64,
    ) -> i16 {
        let mut status = GNTST_OKAY;
        for i in 0..u64::from(nr) {
            let mfn = mfn_of(&self.xen, i);
            if self
                .write_guest(ctx.cr3, list.wrapping_add(i * 8), &mfn.to_le_bytes())
                .is_err()
            {
                status = GNTST_BAD_VIRT_ADDR;
            }
        }
        status
    }
}
