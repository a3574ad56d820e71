//! Frame numbers as types: [`Mfn`] (machine frame, what pagetable entries and hypercalls
//! name) and [`Pfn`] (pseudo-physical frame, the guest's own numbering). `no_std`; the guest,
//! the validator and the VMM share them. Serialized as plain numbers.

use core::fmt;

use crate::pte::{mk_pte, pte_mfn, PAGE_SHIFT};

/// A machine frame number. Any value (a guest may name any); the validator's frame table
/// decides which are inside the domain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "std",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
#[repr(transparent)]
pub struct Mfn(pub u64);

/// A pseudo-physical frame number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "std",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
#[repr(transparent)]
pub struct Pfn(pub u64);

impl Mfn {
    /// The frame an entry points to.
    #[inline]
    pub const fn of_pte(pte: u64) -> Mfn {
        Mfn(pte_mfn(pte))
    }

    /// An entry mapping this frame with `flags`.
    #[inline]
    pub const fn pte(self, flags: u64) -> u64 {
        mk_pte(self.0, flags)
    }

    /// Machine address of the frame's first byte.
    #[inline]
    pub const fn maddr(self) -> u64 {
        self.0 << PAGE_SHIFT
    }

    /// The frame `n` frames further on.
    #[inline]
    pub const fn add(self, n: u64) -> Mfn {
        Mfn(self.0 + n)
    }
}

impl Pfn {
    /// Pseudo-physical address of the frame's first byte.
    #[inline]
    pub const fn paddr(self) -> u64 {
        self.0 << PAGE_SHIFT
    }

    /// The frame `n` frames further on.
    #[inline]
    pub const fn next(self, n: u64) -> Pfn {
        Pfn(self.0 + n)
    }
}

impl fmt::LowerHex for Mfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}

impl fmt::LowerHex for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}
