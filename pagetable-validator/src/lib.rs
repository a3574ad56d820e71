//! Xen's paravirtual MMU rules as a pure library.
//!
//! * [`abi`], [`pte`] and [`frame`]: Xen's PV x86_64 ABI, x86-64 paging bits and the
//!   frame-number types [`Mfn`] / [`Pfn`]. `no_std`, dependency-free; the guest kernel
//!   shares them.
//! * With the `std` feature: the validator — Xen's page types, type counts, pinning
//!   and validated PTE updates over guest memory seen through a small trait
//!   ([`GuestFrames`]). [`Validator`] is the entry point.
//!
//! # Semantics (Xen 4.17, 64-bit PV) and deliberate differences
//!
//! * Type rules, validation, linear pagetables, flag masks, fast path, error
//!   codes and log lines follow Xen's `arch/x86/mm.c`; each module names the facts
//!   it relies on. A failed operation changes no count (exact rollback).
//! * Hypervisor L4 slots 256..=271: Xen ignores guest content there during
//!   validation (any value, present or not, is accepted: real Xen pins such an
//!   L4 with rc 0) and then overwrites the slots with its own mappings
//!   (`init_xen_l4_slots`). There is no hypervisor to map here, so a validated
//!   L4's slots are *cleared* instead: guest content there never reaches the
//!   hardware unvalidated. A failed validation leaves them untouched, as in Xen.
//!   `mmu_update` into them is -EINVAL like Xen ("L4 update in Xen-private area").
//! * L1 flags: by default the mask of a PV domain without I/O capabilities
//!   (PWT/PCD/PAT refused); [`Rules`] selects dom0's (cache attributes allowed)
//!   and Xen's `pv-linear-pt` option. `_PAGE_GNTTAB` (bit 62, refused only by
//!   Xen *debug* builds) is not refused: we follow release builds.
//! * Xen rewrites accepted entries for 64-bit PV kernels, which it runs in ring
//!   3 (`adjust_guest_l*e`, see [`adjust_guest_l1e`]): when a table is validated
//!   (entries accepted before a failure stay rewritten, as in Xen) and on
//!   `mmu_update` / `update_va_mapping`. We do the same, so the guest reads back
//!   what it would on Xen; the VMM runs the guest in ring 0 where the extra
//!   `_PAGE_USER` is harmless (no SMEP/SMAP) and `_PAGE_GLOBAL` has no effect
//!   (CR4.PGE clear). Validation therefore needs `&mut` guest memory.
//!   Xen's "Global bit is set in kernel page" warning is logged too; during a
//!   table's validation it comes after that table's other messages (Xen prints
//!   it entry by entry), which only matters when both occur in one table.
//! * Log lines carry Xen 4.17.5's file and line (`arch/x86/mm.c:2940:d0v0 …`,
//!   as its debug build prints them); checked against that build in
//!   `tests/xen_observed.rs`.
//! * A frame whose type count drops to 0 loses its type (`None`); Xen keeps the
//!   stale type bits, which nothing observable depends on.
//! * General reference counts are `u32`s (Xen's are wider): a frame's count
//!   stops at `u32::MAX` (refused as "reference count overflow", -EINVAL),
//!   slightly earlier for RO L1 references (see below). Nothing real gets near.
//! * Policy [`Policy::Audit`]: writable-mapping conflicts (a frame still mapped
//!   RW becoming a pagetable, or a new RW mapping of a pagetable) are recorded
//!   with provenance and allowed; the writable references are tracked as
//!   "tolerated" on the frame until the mappings go away. Everything else is
//!   refused as in enforce mode.
//!
//! # Frame table and speed
//!
//! [`FRAME_TABLE_BYTES_PER_FRAME`] = 12 bytes per guest frame, as three arrays:
//! the type word (type, validated, pinned, type count; 4 bytes), the untyped
//! reference count (4 bytes: RO L1 mappings) and rarely used counts (linear
//! entries, audit-tolerated mappings; 4 bytes). The general reference count is
//! derived (every type reference comes with a general one), so an RW L1 entry
//! touches only the type word and an RO one only the untyped count. The m2p the
//! VMM may set for log lines adds 8 bytes per frame.
//!
//! Validating an L1 takes its entries in chunks of 16: a chunk mapping
//! consecutive frames with equal flags (the usual kernel layout) is checked and
//! counted as one range with vector operations; other chunks go entry by entry
//! with the frame records prefetched. Release (devalidation) mirrors it.
//! `benches/validate.rs` measures a dense space against a raw read of the same
//! tables and a naive count loop (`scripts/bench.sh --validator-only`).
#![cfg_attr(not(feature = "std"), no_std)]

pub mod abi;
pub mod frame;
pub mod pte;

pub use frame::{Mfn, Pfn};

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
mod segdesc;
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
pub use model::{FrameInfo, PageType, Policy, Region, XenError, FRAME_TABLE_BYTES_PER_FRAME};
#[cfg(feature = "std")]
pub use rules::{
    adjust_guest_l1e, adjust_guest_lne, check_descriptor, Rules, _PAGE_GUEST_KERNEL,
    FIRST_RESERVED_GDT_ENTRY, FLAT_KERNEL_CS, L1_DISALLOW_DOMU, L1_DISALLOW_IO_PRIV, LN_DISALLOW,
};
#[cfg(feature = "std")]
pub use validator::{Validator, XEN_L4_SLOTS};
