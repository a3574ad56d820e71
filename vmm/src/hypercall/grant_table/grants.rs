//! The sub-ops on grant references: map, unmap, transfer, copy, swap, cache_flush. With
//! nobody to grant to or map from, most end in Xen's status for a missing domain.

use super::{is_us_any, size, Batch, GntStatus, DOM0, ENTRY_V1_SIZE, ENTRY_V2_SIZE, UNMAP_BATCH};
use crate::hypercall::{err, Ctx, Hypervisor};
use pagetable_validator::abi::gnttab::*;
use pagetable_validator::abi::{domid, errno, hypercall as hc};
use pagetable_validator::pte::PAGE_SIZE;
use pagetable_validator::Mfn;
use pagetable_validator::PageType;
use vm_memory::ByteValued;

impl Hypervisor {
    /// The checks `map_grant_ref` makes before it pins anything, for one element.
    fn gnt_map_one(&mut self, ctx: &Ctx, op: &GnttabMapGrantRef) -> i16 {
        let GnttabMapGrantRef {
            flags,
            ref_: r#ref,
            dom,
            ..
        } = *op;
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
        let mut h = GrantEntryHeader::default();
        self.gnt_read_shared(r * size, h.as_mut_slice());
        (h.flags, h.domid)
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
            let at = uop.wrapping_add(i * size::<GnttabMapGrantRef>());
            let mut op: GnttabMapGrantRef = self.gnt_read(ctx, at, "map_grant_ref")?;
            op.status = self.gnt_map_one(ctx, &op);
            self.gnt_write(ctx, at, op.as_slice(), "map_grant_ref")?;
            ctx.worked();
        }
        Ok(Batch::Done)
    }

    /// `gnttab_unmap_grant_ref` / `gnttab_unmap_and_replace`: no handle was ever issued
    /// (`maptrack_limit` is 0), so every element is `GNTST_bad_handle`.
    pub(super) fn gnttab_unmap<T: GntStatus>(
        &mut self,
        ctx: &mut Ctx,
        uop: u64,
        count: u64,
        what: &str,
    ) -> Result<Batch, i64> {
        for i in 0..count {
            // Xen checks for preemption only after each batch of 32.
            if i != 0 && i % UNMAP_BATCH == 0 && ctx.preempt_check(i) {
                return Ok(Batch::Preempted(i));
            }
            let at = uop.wrapping_add(i * size::<T>());
            let _: T = self.gnt_read(ctx, at, what)?;
            self.gnt_put_status::<T>(ctx, at, GNTST_BAD_HANDLE, what)?;
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
        self.gnt_batch(
            ctx,
            (uop, count),
            "transfer",
            |hv, ctx, op: &GnttabTransfer| {
                let (mfn, dom) = (op.mfn, op.domid);
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

    /// The loop of `gnttab_transfer`, `gnttab_copy` and `gnttab_swap_grant_ref`: op `i` of
    /// the `count` at `uop`, preemption before each op but the first, `one`'s status written
    /// into the op's `status`; an unreadable op or unwritable status is -EFAULT.
    fn gnt_batch<T: GntStatus>(
        &mut self,
        ctx: &mut Ctx,
        (uop, count): (u64, u64),
        what: &str,
        mut one: impl FnMut(&mut Self, &mut Ctx, &T) -> i16,
    ) -> Result<Batch, i64> {
        for i in 0..count {
            if ctx.preempt_check(i) {
                return Ok(Batch::Preempted(i));
            }
            let at = uop.wrapping_add(i * size::<T>());
            let op: T = self.gnt_read(ctx, at, what)?;
            let status = one(self, ctx, &op);
            self.gnt_put_status::<T>(ctx, at, status, what)?;
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
    fn gnt_copy_one(&mut self, ctx: &Ctx, op: &GnttabCopy) -> i16 {
        let flags = op.flags;
        let len = u64::from(op.len);
        let ptr = |p: &GnttabCopyPtr| (p.u, p.domid, u64::from(p.offset));
        let (src, sdom, soff) = ptr(&op.source);
        let (dst, ddom, doff) = ptr(&op.dest);
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
        self.gnt_batch(ctx, (uop, count), "copy", |hv, ctx, op: &GnttabCopy| {
            hv.gnt_copy_one(ctx, op)
        })
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
            self.gnt_swap_entries::<GrantEntryV1>(a * ENTRY_V1_SIZE, b * ENTRY_V1_SIZE);
        } else {
            self.gnt_swap_entries::<GrantEntryV2>(a * ENTRY_V2_SIZE, b * ENTRY_V2_SIZE);
            let (sa, sb) = (self.gnt_status(a), self.gnt_status(b));
            self.gnt_set_status(a, sb);
            self.gnt_set_status(b, sa);
        }
        GNTST_OKAY
    }

    /// Swaps the entries (`E`: v1 or v2) at offsets `a` and `b` of the shared area.
    fn gnt_swap_entries<E: ByteValued + Default>(&self, a: u64, b: u64) {
        let (mut ea, mut eb) = (E::default(), E::default());
        self.gnt_read_shared(a, ea.as_mut_slice());
        self.gnt_read_shared(b, eb.as_mut_slice());
        self.gnt_write_shared(a, eb.as_slice());
        self.gnt_write_shared(b, ea.as_slice());
    }

    /// `gnttab_swap_grant_ref`.
    pub(super) fn gnttab_swap(
        &mut self,
        ctx: &mut Ctx,
        uop: u64,
        count: u64,
    ) -> Result<Batch, i64> {
        self.gnt_batch(
            ctx,
            (uop, count),
            "swap_grant_ref",
            |hv, _, op: &GnttabSwapGrantRef| hv.gnt_swap_one(op.ref_a, op.ref_b),
        )
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
                let size = size::<GnttabCacheFlush>();
                let args = [(0, cmd), (1, uop + i * size), (2, count - i)];
                return ctx.create_continuation(hc::GRANT_TABLE_OP, a, &args);
            }
            let at = uop.wrapping_add(i * size::<GnttabCacheFlush>());
            let op: GnttabCacheFlush = match self.gnt_read(ctx, at, "cache_flush") {
                Ok(op) => op,
                Err(rc) => return rc,
            };
            let addr = op.a;
            let offset = u64::from(op.offset);
            let length = u64::from(op.length);
            let fop = op.op;
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
