//! Public data types of the validator and the per-frame record.

use serde::{Deserialize, Serialize};

use crate::abi::errno;

pub use crate::frame::Mfn;

/// Refuse (Xen's behaviour) or record-and-allow stray writable mappings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Enforce,
    Audit,
}

/// A named virtual-address range (`end` inclusive), used to name VAs in provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    pub name: String,
    pub start: u64,
    pub end: u64,
}

impl Region {
    pub fn new(name: impl Into<String>, start: u64, end: u64) -> Self {
        Region {
            name: name.into(),
            start,
            end,
        }
    }

    /// The project's guest layout (`pte::layout`): direct map, vmalloc, pkmap,
    /// fixmap, kernel and user.
    pub fn default_layout() -> Vec<Region> {
        use crate::pte::layout::*;
        vec![
            Region::new("user", 0, USER_END),
            Region::new("direct map", DIRECT_MAP_BASE, DIRECT_MAP_END),
            Region::new("vmalloc", VMALLOC_BASE, VMALLOC_END),
            Region::new("pkmap", PKMAP_BASE, PKMAP_END),
            Region::new("fixmap", FIXMAP_BASE, FIXMAP_END),
            Region::new("kernel", KERNEL_BASE, KERNEL_END),
        ]
    }
}

/// Xen's page types (`PGT_*`) as far as PV pagetables and descriptor tables
/// use them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum PageType {
    #[default]
    None = 0,
    Writable = 1,
    L1 = 2,
    L2 = 3,
    L3 = 4,
    L4 = 5,
    /// Xen's `PGT_seg_desc_page`: a frame of a GDT or LDT. Taking the first
    /// reference validates its 512 descriptors (`check_descriptor`).
    SegDesc = 6,
}

impl PageType {
    /// The pagetable type of `level` (1..=4).
    pub fn table(level: u32) -> Option<PageType> {
        match level {
            1 => Some(PageType::L1),
            2 => Some(PageType::L2),
            3 => Some(PageType::L3),
            4 => Some(PageType::L4),
            _ => None,
        }
    }

    /// 1..=4 for pagetable types, 0 otherwise.
    #[inline]
    pub fn level(self) -> u32 {
        match self {
            PageType::L1 => 1,
            PageType::L2 => 2,
            PageType::L3 => 3,
            PageType::L4 => 4,
            PageType::None | PageType::Writable | PageType::SegDesc => 0,
        }
    }

    #[inline]
    pub fn is_table(self) -> bool {
        self.level() != 0
    }

    /// Types whose first reference validates the frame's content (and whose
    /// frame may then not be mapped writable): pagetables and descriptor pages.
    #[inline]
    pub fn is_validated_type(self) -> bool {
        self.is_table() || self == PageType::SegDesc
    }

    /// Xen's `PGT_*` type bits (bits 61..63 of `type_info`) for logs.
    pub fn xen_bits(self) -> u64 {
        let t: u64 = match self {
            PageType::None => 0,
            PageType::L1 => 1,
            PageType::L2 => 2,
            PageType::L3 => 3,
            PageType::L4 => 4,
            PageType::SegDesc => 5,
            PageType::Writable => 7,
        };
        t << 61
    }

    /// Xen's name, as in "Could not get page type PGT_writable_page".
    pub fn xen_name(self) -> &'static str {
        match self {
            PageType::None => "PGT_none",
            PageType::Writable => "PGT_writable_page",
            PageType::L1 => "PGT_l1_page_table",
            PageType::L2 => "PGT_l2_page_table",
            PageType::L3 => "PGT_l3_page_table",
            PageType::L4 => "PGT_l4_page_table",
            PageType::SegDesc => "PGT_seg_desc_page",
        }
    }
}

/// Xen error with its errno.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum XenError {
    #[error("EINVAL: {0}")]
    Inval(String),
    #[error("EBUSY: {0}")]
    Busy(String),
    #[error("EPERM")]
    Perm,
    #[error("ENOMEM")]
    NoMem,
    #[error("ESRCH")]
    Srch,
    #[error("EFAULT")]
    Fault,
    #[error("ENOSYS")]
    NoSys,
}

impl XenError {
    /// The NEGATIVE value to put in rax (-22, -16, ...).
    pub fn errno(&self) -> i64 {
        -match self {
            XenError::Inval(_) => errno::EINVAL,
            XenError::Busy(_) => errno::EBUSY,
            XenError::Perm => errno::EPERM,
            XenError::NoMem => errno::ENOMEM,
            XenError::Srch => errno::ESRCH,
            XenError::Fault => errno::EFAULT,
            XenError::NoSys => errno::ENOSYS,
        }
    }

    pub(crate) fn inval(msg: impl Into<String>) -> Self {
        XenError::Inval(msg.into())
    }
}

/// What the validator knows about one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FrameInfo {
    pub ty: PageType,
    pub type_count: u32,
    pub validated: bool,
    pub pinned: bool,
    /// General reference count: every present entry of a validated table that
    /// points here (RO or RW, data or table), plus the pin and the base pointer.
    pub refs: u32,
    /// Audit policy only: writable mappings tolerated although the frame is a
    /// pagetable (0 in enforce mode).
    pub tolerated_writable: u32,
    /// Xen's `linear_pt_count`: > 0 = this table holds that many linear entries,
    /// < 0 = that many linear entries elsewhere point at it.
    pub linear: i16,
}

/// The hot per-frame type word, Xen-like `type_info`: type in bits 28..31,
/// `PGT_pinned`-like bit 27, validated bit 26, type count in bits 0..25 (larger
/// counts are refused like Xen's "Type count overflow").
///
/// The frame table is a structure of arrays (see [`crate::Validator`]): this
/// word, the untyped reference count (`u32`) and the rarely used [`Cold`] counts
/// each live in their own array. A frame's general reference count (Xen's
/// `count_info`) is not stored: every type reference comes with a general
/// reference, so it is `untyped + type count + tolerated`. An RW L1 entry
/// therefore touches only this word and an RO one only the untyped count, and a
/// dense pin streams through 4 bytes per mapped frame.
///
/// Invariants (checked by the oracle): count 0 ⇔ type `None`; validated ⇔ type
/// Writable, or a table or descriptor page whose validation completed;
/// tolerated > 0 only while the type is a table or a descriptor page.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub(crate) struct Frame {
    pub ti: u32,
}

/// Per-frame counts off the hot path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cold {
    /// Xen's `linear_pt_count`.
    pub linear: i16,
    /// Audit only: writable mappings tolerated on a pagetable (overflow refused).
    pub tolerated: u16,
}

const _: () = assert!(core::mem::size_of::<Frame>() == 4);
const _: () = assert!(core::mem::size_of::<Cold>() == 4);

/// Bytes of frame table per guest frame: the type word, the untyped reference
/// count and the cold counts (the optional m2p the VMM sets for logs adds 8).
pub const FRAME_TABLE_BYTES_PER_FRAME: usize =
    core::mem::size_of::<Frame>() + core::mem::size_of::<u32>() + core::mem::size_of::<Cold>();

pub(crate) const TI_COUNT: u32 = (1 << 26) - 1;
pub(crate) const TI_VALIDATED: u32 = 1 << 26;
pub(crate) const TI_PINNED: u32 = 1 << 27;
pub(crate) const TI_TY_SHIFT: u32 = 28;
/// Largest type count.
pub(crate) const MAX_TYPE_COUNT: u32 = TI_COUNT;
/// Largest untyped reference count: keeps `untyped + type count + tolerated`
/// (the general count reported in [`FrameInfo::refs`]) within a `u32`. Reaching it
/// is "reference count overflow" (-EINVAL), like the general count's overflow in
/// Xen's `get_page` (whose counters are wider: nothing real gets near either).
pub(crate) const MAX_UNTYPED: u32 = u32::MAX - MAX_TYPE_COUNT - u16::MAX as u32;

/// Xen's `type_info` bits for logs (`PGT_validated`, `PGT_pinned`).
pub(crate) const PGT_VALIDATED: u64 = 1 << 58;
pub(crate) const PGT_PINNED: u64 = 1 << 59;

impl PageType {
    #[inline]
    pub(crate) fn from_bits(b: u32) -> PageType {
        match b {
            1 => PageType::Writable,
            2 => PageType::L1,
            3 => PageType::L2,
            4 => PageType::L3,
            5 => PageType::L4,
            6 => PageType::SegDesc,
            _ => PageType::None,
        }
    }

    /// `ti` bits of this type, validated.
    #[inline]
    pub(crate) fn ti_validated(self) -> u32 {
        ((self as u32) << TI_TY_SHIFT) | TI_VALIDATED
    }
}

impl Frame {
    #[inline]
    pub fn ty(self) -> PageType {
        PageType::from_bits(self.ti >> TI_TY_SHIFT)
    }
    #[inline]
    pub fn set_ty(&mut self, ty: PageType) {
        self.ti = (self.ti & !(0xf << TI_TY_SHIFT)) | ((ty as u32) << TI_TY_SHIFT);
    }
    #[inline]
    pub fn validated(self) -> bool {
        self.ti & TI_VALIDATED != 0
    }
    #[inline]
    pub fn set_validated(&mut self, v: bool) {
        self.ti = if v {
            self.ti | TI_VALIDATED
        } else {
            self.ti & !TI_VALIDATED
        };
    }
    #[inline]
    pub fn pinned(self) -> bool {
        self.ti & TI_PINNED != 0
    }
    #[inline]
    pub fn set_pinned(&mut self, v: bool) {
        self.ti = if v {
            self.ti | TI_PINNED
        } else {
            self.ti & !TI_PINNED
        };
    }
    #[inline]
    pub fn count(self) -> u32 {
        self.ti & TI_COUNT
    }
    #[inline]
    pub fn set_count(&mut self, n: u32) {
        debug_assert!(n <= TI_COUNT);
        self.ti = (self.ti & !TI_COUNT) | (n & TI_COUNT);
    }

    /// The hot cases of `get_page_type`: one more reference of an already
    /// validated type, or a fresh writable typing of an untyped frame (type None,
    /// count 0, so nothing tolerated either). Anything else is the slow path.
    #[inline(always)]
    pub fn try_get_type_fast(&mut self, want: PageType) -> bool {
        if self.ti & !(TI_COUNT | TI_PINNED) == want.ti_validated()
            && self.ti & TI_COUNT < MAX_TYPE_COUNT
        {
            self.ti += 1;
            true
        } else if want == PageType::Writable && self.ti == 0 {
            self.ti = want.ti_validated() | 1;
            true
        } else {
            false
        }
    }

    /// The general reference count (Xen's `count_info` without the allocation
    /// reference): untyped references + type references + tolerated ones.
    #[inline]
    pub fn refs(self, untyped: u32, cold: Cold) -> u32 {
        untyped
            .saturating_add(self.count())
            .saturating_add(u32::from(cold.tolerated))
    }

    pub fn info(self, untyped: u32, cold: Cold) -> FrameInfo {
        FrameInfo {
            ty: self.ty(),
            type_count: self.count(),
            validated: self.validated(),
            pinned: self.pinned(),
            refs: self.refs(untyped, cold),
            tolerated_writable: u32::from(cold.tolerated),
            linear: cold.linear,
        }
    }

    /// Xen's `type_info` word, as printed in "Bad type (saw …)".
    pub fn xen_type_info(self) -> u64 {
        self.ty().xen_bits()
            | if self.validated() { PGT_VALIDATED } else { 0 }
            | if self.pinned() { PGT_PINNED } else { 0 }
            | u64::from(self.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_type_info_matches_real_xen_log() {
        // Real Xen 4.17: "Bad type (saw e400000000000001 != exp 2000000000000000)".
        let mut f = Frame::default();
        f.set_ty(PageType::Writable);
        f.set_validated(true);
        f.set_count(1);
        assert_eq!(f.xen_type_info(), 0xe400000000000001);
        assert_eq!(PageType::L1.xen_bits(), 0x2000000000000000);
    }

    #[test]
    fn packed_fields_round_trip() {
        let mut f = Frame::default();
        for ty in [
            PageType::L4,
            PageType::Writable,
            PageType::None,
            PageType::L1,
        ] {
            f.set_ty(ty);
            f.set_count(MAX_TYPE_COUNT);
            f.set_pinned(true);
            f.set_validated(true);
            assert_eq!(
                (f.ty(), f.count(), f.pinned(), f.validated()),
                (ty, MAX_TYPE_COUNT, true, true)
            );
            f.set_count(0);
            f.set_pinned(false);
            f.set_validated(false);
            assert_eq!(
                (f.ty(), f.count(), f.pinned(), f.validated()),
                (ty, 0, false, false)
            );
        }
    }

    #[test]
    fn errnos_are_xens() {
        assert_eq!(XenError::inval("x").errno(), -22);
        assert_eq!(XenError::Busy(String::new()).errno(), -16);
        assert_eq!(XenError::Perm.errno(), -1);
        assert_eq!(XenError::NoMem.errno(), -12);
        assert_eq!(XenError::Srch.errno(), -3);
        assert_eq!(XenError::Fault.errno(), -14);
        assert_eq!(XenError::NoSys.errno(), -38);
    }
}
