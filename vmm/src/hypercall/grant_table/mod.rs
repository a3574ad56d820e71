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
//!
//! The files: this one holds the state, the helpers and the `grant_table_op` dispatch;
//! `table` the table's frames and the sub-ops that serve it (setup_table, query_size,
//! set_version, get_version, get_status_frames); `grants` the sub-ops on grant
//! references (map, unmap, transfer, copy, swap, cache_flush).

use super::{err, handle_okay, Ctx, Hypervisor};
use pagetable_validator::abi::gnttab::*;
use pagetable_validator::abi::{domid, errno, hypercall as hc};
use pagetable_validator::pte::PAGE_SIZE;
use std::mem::{offset_of, size_of};
use vm_memory::ByteValued;

mod grants;
mod table;
#[cfg(test)]
mod tests;

/// `GNTTAB_UNMAP_BATCH_SIZE`: unmaps are preempted only between batches of this many.
const UNMAP_BATCH: u64 = 32;
/// Our domain id: we are dom0.
const DOM0: u16 = 0;
/// `sizeof(grant_entry_v1_t)`, `sizeof(grant_entry_v2_t)`.
const ENTRY_V1_SIZE: u64 = size_of::<GrantEntryV1>() as u64;
const ENTRY_V2_SIZE: u64 = size_of::<GrantEntryV2>() as u64;
/// Grant entries per v2 shared frame and status entries per status frame.
const V2_PER_FRAME: u64 = PAGE_SIZE / ENTRY_V2_SIZE;
const STATUS_PER_FRAME: u64 = PAGE_SIZE / STATUS_SIZE;
/// `GTF_reading | GTF_writing`.
const GTF_READING_WRITING: u16 = GTF_READING | GTF_WRITING;

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

/// The size of an argument structure, the stride of its array.
const fn size<T>() -> u64 {
    size_of::<T>() as u64
}

// unmap_grant_ref and unmap_and_replace continue with the same stride.
const _: () = assert!(size::<GnttabUnmapGrantRef>() == size::<GnttabUnmapAndReplace>());

/// An argument structure whose OUT `status` (a `GNTST_*`) Xen writes back alone
/// (`__copy_field_to_guest(.., status)`).
trait GntStatus: ByteValued + Default {
    /// Where `status` is.
    const STATUS: u64;
}

macro_rules! gnt_status {
    ($($t:ty),* $(,)?) => {
        $(impl GntStatus for $t {
            const STATUS: u64 = offset_of!($t, status) as u64;
        })*
    };
}
gnt_status!(
    GnttabUnmapGrantRef,
    GnttabUnmapAndReplace,
    GnttabSetupTable,
    GnttabTransfer,
    GnttabCopy,
    GnttabGetStatusFrames,
    GnttabSwapGrantRef,
);

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
                batch(ctx, size::<GnttabMapGrantRef>(), r)
            }
            GNTTABOP_UNMAP_GRANT_REF | GNTTABOP_UNMAP_AND_REPLACE => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                let r = if cmd == GNTTABOP_UNMAP_GRANT_REF {
                    self.gnttab_unmap::<GnttabUnmapGrantRef>(ctx, uop, count, "unmap_grant_ref")
                } else {
                    let what = "unmap_and_replace";
                    self.gnttab_unmap::<GnttabUnmapAndReplace>(ctx, uop, count, what)
                };
                batch(ctx, size::<GnttabUnmapGrantRef>(), r)
            }
            GNTTABOP_TRANSFER => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                let r = self.gnttab_transfer(ctx, uop, count);
                batch(ctx, size::<GnttabTransfer>(), r)
            }
            GNTTABOP_COPY => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                let r = self.gnttab_copy(ctx, uop, count);
                batch(ctx, size::<GnttabCopy>(), r)
            }
            GNTTABOP_SWAP_GRANT_REF => {
                if !handle_okay(uop) {
                    return err(errno::EFAULT);
                }
                let r = self.gnttab_swap(ctx, uop, count);
                batch(ctx, size::<GnttabSwapGrantRef>(), r)
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

    fn gnt_read<T: ByteValued + Default>(
        &mut self,
        ctx: &Ctx,
        va: u64,
        what: &str,
    ) -> Result<T, i64> {
        self.read_arg(ctx, va, "grant_table_op", what)
    }

    /// Writes the `status` of the `T` at `at`.
    fn gnt_put_status<T: GntStatus>(
        &mut self,
        ctx: &Ctx,
        at: u64,
        status: i16,
        what: &str,
    ) -> Result<(), i64> {
        self.gnt_write(ctx, at + T::STATUS, &status.to_le_bytes(), what)
    }

    /// Writes an output field; -EFAULT if the guest's memory refuses it.
    fn gnt_write(&mut self, ctx: &Ctx, va: u64, bytes: &[u8], what: &str) -> Result<(), i64> {
        self.write_arg(ctx, va, bytes, "grant_table_op", what)
    }
}
