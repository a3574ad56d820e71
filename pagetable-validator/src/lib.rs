//! Xen's paravirtual MMU rules as a pure library.
//!
//! * [`abi`] and [`pte`]: Xen's PV x86_64 ABI and x86-64 paging bits. `no_std`,
//!   dependency-free; the guest kernel shares them.
//! * With the `std` feature: the validator — Xen's page types, type counts, pinning
//!   and validated PTE updates over guest memory seen through a small trait
//!   ([`GuestFrames`]). [`Validator`] is the entry point.
#![cfg_attr(not(feature = "std"), no_std)]

pub mod abi;
pub mod pte;

#[cfg(feature = "std")]
mod event;
#[cfg(feature = "std")]
mod frames;
#[cfg(feature = "std")]
mod model;
#[cfg(feature = "std")]
mod ops;
#[cfg(feature = "std")]
mod oracle;
#[cfg(feature = "std")]
mod provenance;
#[cfg(feature = "std")]
mod refs;
#[cfg(feature = "std")]
mod rules;
#[cfg(feature = "std")]
mod validator;
#[cfg(feature = "std")]
mod xenlog;

#[cfg(feature = "std")]
pub use event::{Event, Op, StrayMapping, VaRef, Violation, ViolationKind, XenMsg};
#[cfg(feature = "std")]
pub use frames::{GuestFrames, VecFrames};
#[cfg(feature = "std")]
pub use model::{FrameInfo, Mfn, PageType, Policy, Region, XenError};
#[cfg(feature = "std")]
pub use rules::{Rules, L1_DISALLOW_DOMU, L1_DISALLOW_IO_PRIV, LN_DISALLOW};
#[cfg(feature = "std")]
pub use validator::Validator;
