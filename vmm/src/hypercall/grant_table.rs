//! `grant_table_op` (hypercall 20) as Xen 4.17's `common/grant_table.c` answers it for our
//! dom0, the only domain there is.
//!
//! The table itself is served: `setup_table`, `query_size`, `set_version`, `get_version`,
//! `get_status_frames` and `swap_grant_ref` behave as on Xen, with the shared and status frames
//! VMM-owned frames of the Xen area (see [`crate::pv::xen_area::GNTTAB_MAX_FRAMES`]) that are
//! shared with the guest through the validator as they come into use (Xen's
//! `share_xen_page_with_guest`), so the guest may map them read-only or writable.
//!
//! Nobody else exists to grant to or map from, so everything that would touch another domain
//! fails with Xen's status for it: a map of another domain's grant `GNTST_bad_domain`, every
//! unmap `GNTST_bad_handle` (no map was ever made), a transfer or copy naming another domain
//! `GNTST_bad_domain` (`GNTST_permission_denied` for a frame of another domain). A copy between
//! two of our own frames is performed (Xen does it too). What remains — dom0 mapping,
//! transferring to, or copying through its *own* grant references — would need Xen's active
//! grant and maptrack machinery; those requests get `GNTST_general_error` after every check
//! Xen makes before them, and the VMM logs a refusal.

use super::{err, handle_okay, Ctx, Hypervisor};
use crate::pv::xen_area::{GNTTAB_MAX_FRAMES, GNTTAB_MAX_STATUS_FRAMES};
use pagetable_validator::abi::gnttab::*;
use pagetable_validator::abi::{domid, errno, hypercall as hc};
use pagetable_validator::pte::PAGE_SIZE;
use pagetable_validator::PageType;

/// Xen's `GNTTABOP_CONTINUATION_ARG_SHIFT` (common/grant_table.c): the sub-op is the low 12
/// bits of `cmd`; the bits above carry `cache_flush`'s continuation state.
const GNTTABOP_CMD_MASK: u32 = (1 << 12) - 1;
/// `GNTTAB_UNMAP_BATCH_SIZE`: unmaps are preempted only between batches of this many.
const UNMAP_BATCH: u64 = 32;
/// Linux/Xen `EILSEQ`.
const EILSEQ: i64 = 84;
/// Our domain id: we are dom0.
const DOM0: u16 = 0;
/// Grant entries per v2 shared frame and status entries per status frame.
const V2_PER_FRAME: u64 = PAGE_SIZE / ENTRY_V2_SIZE;
const STATUS_PER_FRAME: u64 = PAGE_SIZE / STATUS_SIZE;
/// `GTF_reading | GTF_writing`.
const GTF_READING_WRITING: u16 = (1 << 3) | (1 << 4);
const GTF_TRANSITIVE: u16 = 3;

/// The domain's grant table (Xen's `struct grant_table`, without active entries or maptrack:
/// no grant is ever pinned here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTable {
    /// `gt_version`: 1 or 2.
    pub version: u32,
    /// `nr_grant_frames`: shared frames in use (at least `INITIAL_NR_GRANT_FRAMES` = 1).
    pub nr_frames: u32,
    /// `nr_status_frames` (v2 only; 0 under v1).
    pub nr_status_frames: u32,
}

impl Default for GrantTable {
    /// As `grant_table_init` leaves it: version 1, one shared frame.
    fn default() -> Self {
        GrantTable {
            version: 1,
            nr_frames: 1,
            nr_status_frames: 0,
        }
    }
}

/// `grant_to_status_frames(n)`.
pub const fn status_frames_for(n: u32) -> u32 {
    ((n as u64 * V2_PER_FRAME).div_ceil(STATUS_PER_FRAME)) as u32
}

impl GrantTable {
    /// `nr_grant_entries(gt)`.
    pub fn nr_entries(&self) -> u64 {
        let per = if self.version == 1 {
            PAGE_SIZE / ENTRY_V1_SIZE
        } else {
            V2_PER_FRAME
        };
        u64::from(self.nr_frames) * per
    }
}

/// `rcu_lock_domain_by_any_id`: DOMID_SELF or our own id.
fn is_us_any(d: u16) -> bool {
    d == domid::DOMID_SELF || d == DOM0
}

fn u16_at(b: &[u8], off: u64) -> u16 {
    let o = off as usize;
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], off: u64) -> u32 {
    let o = off as usize;
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
fn u64_at(b: &[u8], off: u64) -> u64 {
    let o = off as usize;
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(v)
}

/// How a batch sub-op ended.
enum Batch {
    /// Every element served.
    Done,
    /// Preempted before element `i`: continue from there.
    Preempted(u64),
}

impl Hypervisor {
    /// `grant_table_op(cmd, uop, count)`.
    pub(super) fn grant_table_op(&mut self, ctx: &mut Ctx, a: [u64; 6]) -> i64 {
        let cmd_in = a[0] as u32;
        let uop = a[1];
        let count = a[2] as u32;
        if (count as i32) < 0 {
            return err(errno::EINVAL);
        }
        let opaque_in = cmd_in & !GNTTABOP_CMD_MASK;
        let cmd = cmd_in & GNTTABOP_CMD_MASK;
        if cmd != GNTTABOP_CACHE_FLUSH && opaque_in != 0 {
            return err(errno::EINVAL);
        }
        let count = u64::from(count);
        // Xen's `hypercall_create_continuation(.., "ihi", cmd, uop + done, count - done)`.
        let batch = |ctx: &mut Ctx, size: u64, r: Result<Batch, i64>| match r {
            Ok(Batch::Done) => 0,
            Ok(Batch::Preempted(i)) => ctx.create_continuation(
                hc::GRANT_TABLE_OP,
                a,
                &[(1, uop + i * size), (2, count - i)],
            ),
            Err(rc) => rc,
        };
        match cmd {
            GNTTABOP_SETUP_TABLE => self.gnttab_setup_table(ctx, uop, count),
            GNTTABOP_QUERY_SIZE => self.gnttab_query_size(ctx, uop, count),
            GNTTABOP_SET_VERSION => self.gnttab_set_version(ctx, uop),
            GNTTABOP_GET_VERSION => self.gnttab_get_version(ctx, uop),
            GNTTABOP_GET_STATUS_FRAMES => self.gnttab_get_status_frames(ctx, uop, count),
            GNTTABOP_MAP_GRANT_REF => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                let r = self.gnttab_map(ctx, uop, count);
                batch(ctx, MAP_GRANT_REF_SIZE, r)
            }
            GNTTABOP_UNMAP_GRANT_REF | GNTTABOP_UNMAP_AND_REPLACE => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                // Same size, handle and status offsets for both structures.
                let r = self.gnttab_unmap(ctx, uop, count, cmd);
                batch(ctx, UNMAP_GRANT_REF_SIZE, r)
            }
            GNTTABOP_TRANSFER => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                let r = self.gnttab_transfer(ctx, uop, count);
                batch(ctx, TRANSFER_SIZE, r)
            }
            GNTTABOP_COPY => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                let r = self.gnttab_copy(ctx, uop, count);
                batch(ctx, COPY_SIZE, r)
            }
            GNTTABOP_SWAP_GRANT_REF => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                let r = self.gnttab_swap(ctx, uop, count);
                batch(ctx, SWAP_GRANT_REF_SIZE, r)
            }
            GNTTABOP_CACHE_FLUSH => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                self.gnttab_cache_flush(ctx, a, opaque_in, count)
            }
            // GNTTABOP_dump_table (3) is gone from Xen 4.17's dispatcher: -ENOSYS, as for
            // every unknown sub-op.
            _ => self.unsupported(ctx, hc::GRANT_TABLE_OP, Some(u64::from(cmd))),
        }
    }

    /// Reads `N` bytes of an argument structure.
    fn gnt_read<const N: usize>(&mut self, ctx: &Ctx, va: u64, what: &str) -> Result<[u8; N], i64> {
        let mut b = [0u8; N];
        match self.ram.read_virt(ctx.cr3, va, &mut b) {
            Ok(()) => Ok(b),
            Err(f) => Err(self.efault(ctx, "grant_table_op", what, f)),
        }
    }

    /// Writes an output field; -EFAULT if the guest's memory refuses it.
    fn gnt_write(&mut self, ctx: &Ctx, va: u64, bytes: &[u8], what: &str) -> Result<(), i64> {
        match self.write_guest(ctx.cr3, va, bytes) {
            Ok(()) => Ok(()),
            Err(f) => Err(self.efault(ctx, "grant_table_op", what, f)),
        }
    }

    /// Guest-physical address of byte `off` of the grant table's shared area.
    fn gnt_shared_gpa(&self, off: u64) -> u64 {
        (self.xen.gnttab_shared_mfn(off / PAGE_SIZE) << 12) | (off % PAGE_SIZE)
    }
    fn gnt_status_gpa(&self, i: u64) -> u64 {
        (self.xen.gnttab_status_mfn(i / STATUS_PER_FRAME) << 12) | ((i % STATUS_PER_FRAME) * 2)
    }
    fn gnt_read_shared(&self, off: u64, buf: &mut [u8]) {
        let ok = self.ram.read_phys(self.gnt_shared_gpa(off), buf);
        debug_assert!(ok, "grant frames lie in the Xen area");
    }
    fn gnt_write_shared(&self, off: u64, buf: &[u8]) {
        let ok = self.ram.write_phys(self.gnt_shared_gpa(off), buf);
        debug_assert!(ok, "grant frames lie in the Xen area");
    }
    fn gnt_status(&self, i: u64) -> u16 {
        let mut b = [0u8; 2];
        self.ram.read_phys(self.gnt_status_gpa(i), &mut b);
        u16::from_le_bytes(b)
    }
    fn gnt_set_status(&self, i: u64, v: u16) {
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
            self.validator.share_xen_frame(mfn);
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
                .share_xen_frame(self.xen.gnttab_shared_mfn(u64::from(i)));
        }
        self.gnttab.nr_frames = self.gnttab.nr_frames.max(req);
    }

    /// `gnttab_setup_table` (`limit_max` = UINT_MAX from the hypercall).
    fn gnttab_setup_table(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> i64 {
        if count != 1 {
            return err(errno::EINVAL);
        }
        let op: [u8; SETUP_TABLE_SIZE as usize] = match self.gnt_read(ctx, uop, "setup_table") {
            Ok(b) => b,
            Err(rc) => return rc,
        };
        let dom = u16_at(&op, 0);
        let nr = u32_at(&op, SETUP_TABLE_NR_FRAMES);
        let list = u64_at(&op, SETUP_TABLE_FRAME_LIST);
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
            let mut status = GNTST_OKAY;
            for i in 0..u64::from(nr) {
                let mfn = self.xen.gnttab_shared_mfn(i);
                if self
                    .write_guest(ctx.cr3, list.wrapping_add(i * 8), &mfn.to_le_bytes())
                    .is_err()
                {
                    status = GNTST_BAD_VIRT_ADDR;
                }
            }
            status
        };
        match self.gnt_write(
            ctx,
            uop + SETUP_TABLE_STATUS,
            &status.to_le_bytes(),
            "setup_table",
        ) {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }

    /// `gnttab_query_size`: the whole structure is copied back, as Xen does.
    fn gnttab_query_size(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> i64 {
        if count != 1 {
            return err(errno::EINVAL);
        }
        let mut op: [u8; QUERY_SIZE_SIZE as usize] = match self.gnt_read(ctx, uop, "query_size") {
            Ok(b) => b,
            Err(rc) => return rc,
        };
        let status = if is_us_any(u16_at(&op, 0)) {
            let n = QUERY_SIZE_NR_FRAMES as usize;
            let m = QUERY_SIZE_MAX_NR_FRAMES as usize;
            op[n..n + 4].copy_from_slice(&self.gnttab.nr_frames.to_le_bytes());
            op[m..m + 4].copy_from_slice(&(GNTTAB_MAX_FRAMES as u32).to_le_bytes());
            GNTST_OKAY
        } else {
            GNTST_BAD_DOMAIN
        };
        let s = QUERY_SIZE_STATUS as usize;
        op[s..s + 2].copy_from_slice(&status.to_le_bytes());
        match self.gnt_write(ctx, uop, &op, "query_size") {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }

    /// `gnttab_set_version` (the count is not looked at, as in Xen).
    fn gnttab_set_version(&mut self, ctx: &mut Ctx, uop: u64) -> i64 {
        let op: [u8; SET_VERSION_SIZE as usize] = match self.gnt_read(ctx, uop, "set_version") {
            Ok(b) => b,
            Err(rc) => return rc,
        };
        let want = u32_at(&op, 0);
        let res = if want != 1 && want != 2 {
            err(errno::EINVAL)
        } else if want == self.gnttab.version {
            0
        } else {
            // Xen's max_version for dom0 is opt_gnttab_max_version = 2, and no entry is ever
            // pinned here, so the in-use check always passes.
            self.gnt_switch_version(want)
        };
        let v = self.gnttab.version.to_le_bytes();
        match self.gnt_write(ctx, uop, &v, "set_version") {
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
                let mut e = [0u8; 8];
                self.gnt_read_shared(i as u64 * ENTRY_V1_SIZE, &mut e);
                *k = (u16_at(&e, 0), u16_at(&e, 2), u64::from(u32_at(&e, 4)));
            }
        } else {
            let mut entries = [[0u8; 16]; GNTTAB_NR_RESERVED_ENTRIES as usize];
            for (i, e) in entries.iter_mut().enumerate() {
                self.gnt_read_shared(i as u64 * ENTRY_V2_SIZE, e);
                let flags = u16_at(e, 0);
                let frame = u64_at(e, 8);
                match flags & GTF_TYPE_MASK {
                    GTF_PERMIT_ACCESS if frame >> 32 == 0 => {}
                    // "tried to change grant table version to 1 with non-representable
                    // entries"
                    GTF_PERMIT_ACCESS | GTF_TRANSITIVE => return err(errno::ERANGE),
                    _ => {}
                }
            }
            for (i, (e, k)) in entries.iter().zip(keep.iter_mut()).enumerate() {
                let flags = u16_at(e, 0);
                *k = match flags & GTF_TYPE_MASK {
                    GTF_PERMIT_ACCESS => (
                        flags | self.gnt_status(i as u64),
                        u16_at(e, 2),
                        u64_at(e, 8),
                    ),
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
                let mut e = [0u8; 8];
                e[0..2].copy_from_slice(&flags.to_le_bytes());
                e[2..4].copy_from_slice(&dom.to_le_bytes());
                e[4..8].copy_from_slice(&(frame as u32).to_le_bytes());
                self.gnt_write_shared(i * ENTRY_V1_SIZE, &e);
            } else {
                self.gnt_set_status(i, flags & GTF_READING_WRITING);
                let mut e = [0u8; 16];
                e[0..2].copy_from_slice(&(flags & !GTF_READING_WRITING).to_le_bytes());
                e[2..4].copy_from_slice(&dom.to_le_bytes());
                e[8..16].copy_from_slice(&frame.to_le_bytes());
                self.gnt_write_shared(i * ENTRY_V2_SIZE, &e);
            }
        }
        debug_assert!(reserved * ENTRY_V2_SIZE <= PAGE_SIZE);
        self.gnttab.version = want;
        0
    }

    /// `gnttab_get_version`.
    fn gnttab_get_version(&mut self, ctx: &mut Ctx, uop: u64) -> i64 {
        let op: [u8; GET_VERSION_SIZE as usize] = match self.gnt_read(ctx, uop, "get_version") {
            Ok(b) => b,
            Err(rc) => return rc,
        };
        if !is_us_any(u16_at(&op, 0)) {
            return err(errno::ESRCH);
        }
        let v = self.gnttab.version.to_le_bytes();
        match self.gnt_write(ctx, uop + GET_VERSION_VERSION, &v, "get_version") {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }

    /// `gnttab_get_status_frames`.
    fn gnttab_get_status_frames(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> i64 {
        if count != 1 {
            return err(errno::EINVAL);
        }
        let op: [u8; GET_STATUS_FRAMES_SIZE as usize] =
            match self.gnt_read(ctx, uop, "get_status_frames") {
                Ok(b) => b,
                Err(rc) => return rc,
            };
        let nr = u32_at(&op, 0);
        let dom = u16_at(&op, GET_STATUS_FRAMES_DOM);
        let list = u64_at(&op, GET_STATUS_FRAMES_FRAME_LIST);
        if !handle_okay(list) {
            return err(errno::EFAULT);
        }
        let status = if !is_us_any(dom) {
            GNTST_BAD_DOMAIN
        } else if nr > self.gnttab.nr_status_frames {
            GNTST_GENERAL_ERROR
        } else {
            let mut status = GNTST_OKAY;
            for i in 0..u64::from(nr) {
                let mfn = self.xen.gnttab_status_mfn(i);
                if self
                    .write_guest(ctx.cr3, list.wrapping_add(i * 8), &mfn.to_le_bytes())
                    .is_err()
                {
                    status = GNTST_BAD_VIRT_ADDR;
                }
            }
            status
        };
        let at = uop + GET_STATUS_FRAMES_STATUS;
        match self.gnt_write(ctx, at, &status.to_le_bytes(), "get_status_frames") {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }

    /// The checks `map_grant_ref` makes before it pins anything, for one element.
    fn gnt_map_one(&mut self, ctx: &Ctx, op: &[u8]) -> i16 {
        let flags = u32_at(op, MAP_GRANT_REF_FLAGS);
        let r#ref = u32_at(op, MAP_GRANT_REF_REF);
        let dom = u16_at(op, MAP_GRANT_REF_DOM);
        if flags & (GNTMAP_DEVICE_MAP | GNTMAP_HOST_MAP) == 0 {
            return GNTST_BAD_GNTREF; // "Bad flags in grant map op"
        }
        // rcu_lock_domain_by_id: DOMID_SELF is not an id; only dom0 (ourselves) exists.
        if dom != DOM0 {
            return GNTST_BAD_DOMAIN;
        }
        if u64::from(r#ref) >= self.gnttab.nr_entries() {
            return GNTST_BAD_GNTREF;
        }
        // _set_status: the entry must permit access to us (not sub-page for a map), and not
        // be read-only for a writable map.
        let (eflags, edom) = self.gnt_entry_header(u64::from(r#ref));
        let readonly = flags & GNTMAP_READONLY != 0;
        if eflags & (GTF_TYPE_MASK | GTF_SUB_PAGE) != GTF_PERMIT_ACCESS
            || edom != DOM0
            || (!readonly && eflags & GTF_READONLY != 0)
        {
            return GNTST_GENERAL_ERROR;
        }
        self.gnt_refuse(ctx, "map_grant_ref of a grant dom0 made to itself");
        GNTST_GENERAL_ERROR
    }

    /// (flags, domid) of grant entry `r`.
    fn gnt_entry_header(&self, r: u64) -> (u16, u16) {
        let size = if self.gnttab.version == 1 {
            ENTRY_V1_SIZE
        } else {
            ENTRY_V2_SIZE
        };
        let mut h = [0u8; 4];
        self.gnt_read_shared(r * size, &mut h);
        (u16_at(&h, 0), u16_at(&h, 2))
    }

    /// Logs a request that only Xen's active-grant machinery could serve.
    fn gnt_refuse(&mut self, ctx: &Ctx, what: &str) {
        let why = format!("{what} not supported (GNTST_general_error)");
        self.log.vmm_refusal(
            "grant_table_op",
            i64::from(GNTST_GENERAL_ERROR),
            &why,
            ctx.rip,
            true,
        );
    }

    /// `gnttab_map_grant_ref`: each element is copied back whole with its status.
    fn gnttab_map(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> Result<Batch, i64> {
        for i in 0..count {
            if ctx.preempt_check(i) {
                return Ok(Batch::Preempted(i));
            }
            let at = uop.wrapping_add(i * MAP_GRANT_REF_SIZE);
            let mut op: [u8; MAP_GRANT_REF_SIZE as usize] =
                self.gnt_read(ctx, at, "map_grant_ref")?;
            let status = self.gnt_map_one(ctx, &op);
            let s = MAP_GRANT_REF_STATUS as usize;
            op[s..s + 2].copy_from_slice(&status.to_le_bytes());
            self.gnt_write(ctx, at, &op, "map_grant_ref")?;
            ctx.worked();
        }
        Ok(Batch::Done)
    }

    /// `gnttab_unmap_grant_ref` / `gnttab_unmap_and_replace`: no handle was ever issued
    /// (`maptrack_limit` is 0), so every element is `GNTST_bad_handle`.
    fn gnttab_unmap(
        &mut self,
        ctx: &mut Ctx,
        uop: u64,
        count: u64,
        cmd: u32,
    ) -> Result<Batch, i64> {
        let (size, status_off, what) = if cmd == GNTTABOP_UNMAP_GRANT_REF {
            (
                UNMAP_GRANT_REF_SIZE,
                UNMAP_GRANT_REF_STATUS,
                "unmap_grant_ref",
            )
        } else {
            (
                UNMAP_AND_REPLACE_SIZE,
                UNMAP_AND_REPLACE_STATUS,
                "unmap_and_replace",
            )
        };
        for i in 0..count {
            // Xen checks for preemption only after each batch of 32.
            if i != 0 && i % UNMAP_BATCH == 0 && ctx.preempt_check(i) {
                return Ok(Batch::Preempted(i));
            }
            let at = uop.wrapping_add(i * size);
            let _: [u8; UNMAP_GRANT_REF_SIZE as usize] = self.gnt_read(ctx, at, what)?;
            self.gnt_write(ctx, at + status_off, &GNTST_BAD_HANDLE.to_le_bytes(), what)?;
            ctx.worked();
        }
        Ok(Batch::Done)
    }

    /// `gnttab_transfer`: giving a page away needs a receiving domain.
    fn gnttab_transfer(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> Result<Batch, i64> {
        for i in 0..count {
            if ctx.preempt_check(i) {
                return Ok(Batch::Preempted(i));
            }
            let at = uop.wrapping_add(i * TRANSFER_SIZE);
            let op: [u8; TRANSFER_SIZE as usize] = self.gnt_read(ctx, at, "transfer")?;
            let mfn = u64_at(&op, 0);
            let dom = u16_at(&op, TRANSFER_DOMID);
            let status = if mfn >= self.validator.nr_frames() {
                // Not one of our pages (mfn_valid / steal_page's owner check).
                GNTST_BAD_PAGE
            } else if dom != DOM0 {
                // Xen steals the page first and then finds no such domain; the page is not
                // taken from the guest here (it never learns the difference but through
                // the M2P).
                GNTST_BAD_DOMAIN
            } else {
                self.gnt_refuse(ctx, "transfer of a page to dom0 itself");
                GNTST_GENERAL_ERROR
            };
            self.gnt_write(ctx, at + TRANSFER_STATUS, &status.to_le_bytes(), "transfer")?;
            ctx.worked();
        }
        Ok(Batch::Done)
    }

    /// Whether frame `mfn` is a page of ours for `get_paged_frame` (RAM, or a Xen frame
    /// shared with us: shared_info and the grant frames in use).
    pub(super) fn gnt_our_frame(&self, mfn: u64) -> bool {
        if mfn < self.validator.nr_frames() || mfn == self.xen.shared_info_mfn() {
            return true;
        }
        let shared = (0..u64::from(self.gnttab.nr_frames)).map(|i| self.xen.gnttab_shared_mfn(i));
        let status =
            (0..u64::from(self.gnttab.nr_status_frames)).map(|i| self.xen.gnttab_status_mfn(i));
        shared.chain(status).any(|m| m == mfn)
    }

    /// `get_page_type(page, PGT_writable_page)` for one of our frames, taken and dropped:
    /// refused while the frame holds a type with references or is a validated table.
    pub(super) fn gnt_writable(&self, mfn: u64) -> bool {
        match self.validator.frame_info(mfn) {
            None => true, // a shared Xen frame: PGT_writable_page
            Some(i) => {
                matches!(i.ty, PageType::None | PageType::Writable)
                    || (i.type_count == 0 && !i.validated)
            }
        }
    }

    /// One `gnttab_copy_one` (the frames are claimed and released per element).
    fn gnt_copy_one(&mut self, ctx: &Ctx, op: &[u8]) -> i16 {
        let flags = u16_at(op, COPY_FLAGS);
        let len = u64::from(u16_at(op, COPY_LEN));
        let ptr = |base: u64| {
            (
                u64_at(op, base),
                u16_at(op, base + COPY_PTR_DOMID),
                u64::from(u16_at(op, base + COPY_PTR_OFFSET)),
            )
        };
        let (src, sdom, soff) = ptr(COPY_SOURCE);
        let (dst, ddom, doff) = ptr(COPY_DEST);
        let sgref = flags & GNTCOPY_SOURCE_GREF != 0;
        let dgref = flags & GNTCOPY_DEST_GREF != 0;
        // gnttab_copy_lock_domain, source then destination.
        for (d, gref) in [(sdom, sgref), (ddom, dgref)] {
            if d != domid::DOMID_SELF && !gref {
                return GNTST_PERMISSION_DENIED; // "Only DOMID_SELF may reference via frame"
            }
            if !is_us_any(d) {
                return GNTST_BAD_DOMAIN;
            }
        }
        // gnttab_copy_claim_buf, source then destination.
        for (frame, gref, write) in [(src, sgref, false), (dst, dgref, true)] {
            if gref {
                let r = frame as u32;
                if u64::from(r) >= self.gnttab.nr_entries() {
                    return GNTST_BAD_GNTREF;
                }
                let (eflags, edom) = self.gnt_entry_header(u64::from(r));
                let ty = eflags & GTF_TYPE_MASK;
                if (ty != GTF_PERMIT_ACCESS && ty != GTF_TRANSITIVE)
                    || edom != DOM0
                    || (write && eflags & GTF_READONLY != 0)
                {
                    return GNTST_GENERAL_ERROR;
                }
                self.gnt_refuse(ctx, "copy through a grant dom0 made to itself");
                return GNTST_GENERAL_ERROR;
            }
            if !self.gnt_our_frame(frame) {
                return GNTST_BAD_PAGE;
            }
            if write && !self.gnt_writable(frame) {
                return GNTST_GENERAL_ERROR; // "Could not get writable frame"
            }
        }
        // gnttab_copy_buf.
        if soff + len > PAGE_SIZE || doff + len > PAGE_SIZE {
            return GNTST_BAD_COPY_ARG;
        }
        let mut buf = vec![0u8; len as usize];
        let read = self.ram.read_phys((src << 12) + soff, &mut buf);
        let wrote = read && self.ram.write_phys((dst << 12) + doff, &buf);
        debug_assert!(wrote, "both frames are ours and in guest memory");
        // Replay tracks guest RAM only; a copy into a shared Xen frame is not a guest write.
        if self.log.machine() && dst < self.validator.nr_frames() {
            let bytes = super::record::hex(&buf);
            self.log.record(
                &serde_json::json!({ "event": "guest_write", "gpa": (dst << 12) + doff, "hex": bytes }),
            );
        }
        GNTST_OKAY
    }

    /// `gnttab_copy`.
    fn gnttab_copy(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> Result<Batch, i64> {
        for i in 0..count {
            if ctx.preempt_check(i) {
                return Ok(Batch::Preempted(i));
            }
            let at = uop.wrapping_add(i * COPY_SIZE);
            let op: [u8; COPY_SIZE as usize] = self.gnt_read(ctx, at, "copy")?;
            let status = self.gnt_copy_one(ctx, &op);
            self.gnt_write(ctx, at + COPY_STATUS, &status.to_le_bytes(), "copy")?;
            ctx.worked();
        }
        Ok(Batch::Done)
    }

    /// `swap_grant_ref`: nothing is ever pinned, so the swap happens whenever both refs exist.
    fn gnt_swap_one(&mut self, a: u32, b: u32) -> i16 {
        let n = self.gnttab.nr_entries();
        if u64::from(a) >= n || u64::from(b) >= n {
            return GNTST_BAD_GNTREF;
        }
        if a == b {
            return GNTST_OKAY;
        }
        let (a, b) = (u64::from(a), u64::from(b));
        if self.gnttab.version == 1 {
            let (mut ea, mut eb) = ([0u8; 8], [0u8; 8]);
            self.gnt_read_shared(a * ENTRY_V1_SIZE, &mut ea);
            self.gnt_read_shared(b * ENTRY_V1_SIZE, &mut eb);
            self.gnt_write_shared(a * ENTRY_V1_SIZE, &eb);
            self.gnt_write_shared(b * ENTRY_V1_SIZE, &ea);
        } else {
            let (mut ea, mut eb) = ([0u8; 16], [0u8; 16]);
            self.gnt_read_shared(a * ENTRY_V2_SIZE, &mut ea);
            self.gnt_read_shared(b * ENTRY_V2_SIZE, &mut eb);
            self.gnt_write_shared(a * ENTRY_V2_SIZE, &eb);
            self.gnt_write_shared(b * ENTRY_V2_SIZE, &ea);
            let (sa, sb) = (self.gnt_status(a), self.gnt_status(b));
            self.gnt_set_status(a, sb);
            self.gnt_set_status(b, sa);
        }
        GNTST_OKAY
    }

    /// `gnttab_swap_grant_ref`.
    fn gnttab_swap(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> Result<Batch, i64> {
        for i in 0..count {
            if ctx.preempt_check(i) {
                return Ok(Batch::Preempted(i));
            }
            let at = uop.wrapping_add(i * SWAP_GRANT_REF_SIZE);
            let op: [u8; SWAP_GRANT_REF_SIZE as usize] =
                self.gnt_read(ctx, at, "swap_grant_ref")?;
            let status = self.gnt_swap_one(u32_at(&op, 0), u32_at(&op, SWAP_GRANT_REF_REF_B));
            self.gnt_write(
                ctx,
                at + SWAP_GRANT_REF_STATUS,
                &status.to_le_bytes(),
                "swap_grant_ref",
            )?;
            ctx.worked();
        }
        Ok(Batch::Done)
    }

    /// `gnttab_cache_flush`. On x86 a clean (with or without invalidate) of one of our own
    /// frames succeeds and an invalidate alone is -EOPNOTSUPP; `cur_ref` (the continuation
    /// state in `cmd`'s upper bits) only matters for other domains' frames, of which there
    /// are none, except that a no-op element with a non-zero one is -EILSEQ.
    fn gnttab_cache_flush(&mut self, ctx: &mut Ctx, a: [u64; 6], cur_ref: u32, count: u64) -> i64 {
        let uop = a[1];
        let mut cur_ref = cur_ref;
        for i in 0..count {
            if ctx.preempt_check(i) {
                // opaque_out = cur_ref (0 after a completed element).
                let cmd = u64::from(cur_ref | GNTTABOP_CACHE_FLUSH);
                let args = [(0, cmd), (1, uop + i * CACHE_FLUSH_SIZE), (2, count - i)];
                return ctx.create_continuation(hc::GRANT_TABLE_OP, a, &args);
            }
            let at = uop.wrapping_add(i * CACHE_FLUSH_SIZE);
            let op: [u8; CACHE_FLUSH_SIZE as usize] = match self.gnt_read(ctx, at, "cache_flush") {
                Ok(b) => b,
                Err(rc) => return rc,
            };
            let addr = u64_at(&op, 0);
            let offset = u64::from(u16_at(&op, CACHE_FLUSH_OFFSET));
            let length = u64::from(u16_at(&op, CACHE_FLUSH_LENGTH));
            let fop = u32_at(&op, CACHE_FLUSH_OP);
            if offset >= PAGE_SIZE
                || length > PAGE_SIZE
                || offset + length > PAGE_SIZE
                || fop & !(GNTTAB_CACHE_INVAL | GNTTAB_CACHE_CLEAN) != 0
            {
                return err(errno::EINVAL);
            }
            if length == 0 || fop == 0 {
                if cur_ref != 0 {
                    return err(EILSEQ);
                }
            } else if fop & GNTTAB_CACHE_SOURCE_GREF != 0 {
                return err(errno::EOPNOTSUPP);
            } else {
                let mfn = addr >> 12;
                if mfn >= self.xen.base_frame + self.xen.nr_frames {
                    return err(errno::EINVAL); // !mfn_valid
                }
                if !self.gnt_our_frame(mfn) {
                    return err(errno::EPERM); // a page of Xen's: no owner
                }
                if fop == GNTTAB_CACHE_INVAL {
                    return err(errno::EOPNOTSUPP);
                }
                // Clean (and invalidate): Xen flushes the cache; guest memory is coherent.
            }
            cur_ref = 0;
            ctx.worked();
        }
        0
    }
}

#[cfg(test)]
mod tests;
