//! Public data types of the validator and the per-frame record.

use serde::{Deserialize, Serialize};

use crate::abi::errno;

/// Machine frame number.
pub type Mfn = u64;

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

/// Xen's page types (`PGT_*`) as far as PV pagetables use them.
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
            PageType::None | PageType::Writable => 0,
        }
    }

    #[inline]
    pub fn is_table(self) -> bool {
        self.level() != 0
    }

    /// Xen's `PGT_*` type bits (bits 61..63 of `type_info`) for logs.
    pub fn xen_bits(self) -> u64 {
        let t: u64 = match self {
            PageType::None => 0,
            PageType::L1 => 1,
            PageType::L2 => 2,
            PageType::L3 => 3,
            PageType::L4 => 4,
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

/// The per-frame record of the frame table. 16 bytes; kept small because the
/// validation hot path touches one per entry.
///
/// Invariants (checked by the oracle): `type_count == 0` ⇔ `ty == None`;
/// `validated` ⇔ (`ty` is Writable, or a table whose validation completed);
/// `tolerated > 0` only while `ty` is a table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Frame {
    pub ty: PageType,
    pub validated: bool,
    pub pinned: bool,
    pub linear: i16,
    /// Audit only; u16 keeps the record at 16 bytes (overflow is refused).
    pub tolerated: u16,
    pub type_count: u32,
    pub refs: u32,
}

const _: () = assert!(core::mem::size_of::<Frame>() == 16);

/// Xen's `type_info` bits for logs (`PGT_validated`, `PGT_pinned`).
pub(crate) const PGT_VALIDATED: u64 = 1 << 58;
pub(crate) const PGT_PINNED: u64 = 1 << 59;

impl Frame {
    pub fn info(&self) -> FrameInfo {
        FrameInfo {
            ty: self.ty,
            type_count: self.type_count,
            validated: self.validated,
            pinned: self.pinned,
            refs: self.refs,
            tolerated_writable: u32::from(self.tolerated),
            linear: self.linear,
        }
    }

    /// Xen's `type_info` word, as printed in "Bad type (saw …)".
    pub fn xen_type_info(&self) -> u64 {
        self.ty.xen_bits()
            | if self.validated { PGT_VALIDATED } else { 0 }
            | if self.pinned { PGT_PINNED } else { 0 }
            | u64::from(self.type_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xen_type_info_matches_real_xen_log() {
        // Real Xen 4.17: "Bad type (saw e400000000000001 != exp 2000000000000000)".
        let f = Frame {
            ty: PageType::Writable,
            validated: true,
            type_count: 1,
            ..Frame::default()
        };
        assert_eq!(f.xen_type_info(), 0xe400000000000001);
        assert_eq!(PageType::L1.xen_bits(), 0x2000000000000000);
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
