//! Xen's paravirtual MMU rules as a pure library.
//!
//! * [`abi`] and [`pte`]: Xen's PV x86_64 ABI and x86-64 paging bits. `no_std`,
//!   dependency-free; the guest kernel shares them.
//! * With the `std` feature: the validator — Xen's page types, type counts, pinning
//!   and validated PTE updates over guest memory seen through a small trait
//!   ([`GuestFrames`]). [`Validator`] is the entry point.
//!
//! # Semantics (Xen 4.17, 64-bit PV) and deliberate differences
//!
//! * Type rules, validation, linear pagetables, flag masks, fast path, error
//!   codes and log lines follow Xen's `arch/x86/mm.c`; each module names the facts
//!   it relies on. A failed operation changes no count (exact rollback).
//! * Hypervisor L4 slots 256..=271: Xen ignores guest content there and overwrites
//!   it with its own mappings. There is no hypervisor in them here and the
//!   validator cannot write guest memory while validating, so a *present* entry
//!   in those slots makes validation fail (-EINVAL); non-present content is
//!   ignored like Xen does; `mmu_update` into them is -EINVAL like Xen.
//! * L1 flags: by default the mask of a PV domain without I/O capabilities
//!   (PWT/PCD/PAT refused); [`Rules`] selects dom0's (cache attributes allowed)
//!   and Xen's `pv-linear-pt` option. `_PAGE_GNTTAB` checks (debug builds) are
//!   not modelled.
//! * Xen rewrites accepted entries for 64-bit PV kernels running in ring 3
//!   (`adjust_guest_l*e`: `_PAGE_USER`, `_PAGE_GUEST_KERNEL`); the guest runs in
//!   ring 0 under the VMM, so entries are written exactly as requested.
//! * A frame whose type count drops to 0 loses its type (`None`); Xen keeps the
//!   stale type bits, which nothing observable depends on.
//! * Policy [`Policy::Audit`]: writable-mapping conflicts (a frame still mapped
//!   RW becoming a pagetable, or a new RW mapping of a pagetable) are recorded
//!   with provenance and allowed; the writable references are tracked as
//!   "tolerated" on the frame until the mappings go away. Everything else is
//!   refused as in enforce mode.
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
mod tables;
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
