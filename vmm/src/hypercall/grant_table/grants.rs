//! The sub-ops on grant references: map, unmap, transfer, copy, swap, cache_flush. With
//! nobody to grant to or map from, most end in Xen's status for a missing domain.

use super::{is_us_any, Batch, DOM0, UNMAP_BATCH};
use crate::hypercall::{err, Ctx, Hypervisor};
use crate::le::{u16_at, u32_at, u64_at};
use pagetable_validator::abi::gnttab::*;
use pagetable_validator::abi::{domid, errno, hypercall as hc};
use pagetable_validator::pte::PAGE_SIZE;
use pagetable_validator::Mfn;
use pagetable_validator::PageType;

impl Hypervisor {
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
    pub(super) fn gnttab_map(&mut self, ctx: &mut Ctx, uop: u64, count: u64) -> Result<Batch, i64> {
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
    pub(super) fn gnttab_unmap(
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
    pub(super) fn gnttab_transfer(
        &mut self,
        ctx: &mut Ctx,
        uop: u64,
        count: u64,
    ) -> Result<Batch, i64> {
        self.gnt_batch::<{ TRANSFER_SIZE as usize }>(
            ctx,
            (uop, count),
            "transfer",
            TRANSFER_STATUS,
            |hv, ctx, op| {
                let mfn = u64_at(op, 0);
                let dom = u16_at(op, TRANSFER_DOMID);
                if mfn >= hv.validator.nr_frames() {
                    // Not one of our pages (mfn_valid / steal_page's owner check).
                    GNTST_BAD_PAGE
                } else if dom != DOM0 {
                    // Xen steals the page first and then finds no such domain; the page is
                    // not taken from the guest here (it never learns the difference but
                    // through the M2P).
                    GNTST_BAD_DOMAIN
                } else {
                    hv.gnt_refuse(ctx, "transfer of a page to dom0 itself");
                    GNTST_GENERAL_ERROR
                }
            },
        )
    }

    /// The loop of `gnttab_transfer` and `gnttab_copy`: op `i` (N bytes) of the `count` at
    /// `uop`, preemption before each op but the first, `one`'s status written at
    /// `status_off` of the op; an unreadable op or unwritable status is -EFAULT.
    fn gnt_batch<const N: usize>(
        &mut self,
        ctx: &mut Ctx,
        (uop, count): (u64, u64),
        what: &str,
        status_off: u64,
        mut one: impl FnMut(&mut Self, &mut Ctx, &[u8; N]) -> i16,
    ) -> Result<Batch, i64> {
        for i in 0..count {
            if ctx.preempt_check(i) {
                return Ok(Batch::Preempted(i));
            }
            let at = uop.wrapping_add(i * N as u64);
            let op: [u8; N] = self.gnt_read(ctx, at, what)?;
            let status = one(self, ctx, &op);
            self.gnt_write(ctx, at + status_off, &status.to_le_bytes(), what)?;
            ctx.worked();
        }
        Ok(Batch::Done)
    }

    /// Whether frame `mfn` is a page of ours for `get_paged_frame` (RAM, or a Xen frame
    /// shared with us: shared_info and the grant frames in use).
    pub(in crate::hypercall) fn gnt_our_frame(&self, mfn: u64) -> bool {
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
    pub(in crate::hypercall) fn gnt_writable(&self, mfn: u64) -> bool {
        match self.validator.frame_info(Mfn(mfn)) {
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
            let hex = crate::hypercall::record::hex(&buf);
            let gpa = (dst << 12) + doff;
            self.log
                .record(crate::log_record::VmmRecord::GuestWrite { gpa, hex });
        }
        GNTST_OKAY
    }

    /// `gnttab_copy`.
    pub(super) fn gnttab_copy(
        &mut self,
        ctx: &mut Ctx,
        uop: u64,
        count: u64,
    ) -> Result<Batch, i64> {
        self.gnt_batch::<{ COPY_SIZE as usize }>(
            ctx,
            (uop, count),
            "copy",
            COPY_STATUS,
            |hv, ctx, op| hv.gnt_copy_one(ctx, op),
        )
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
    pub(super) fn gnttab_swap(
        &mut self,
        ctx: &mut Ctx,
        uop: u64,
        count: u64,
    ) -> Result<Batch, i64> {
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
    pub(super) fn gnttab_cache_flush(
        &mut self,
        ctx: &mut Ctx,
        a: [u64; 6],
        cur_ref: u32,
        count: u64,
    ) -> i64 {
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
                    return err(errno::EILSEQ);
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
