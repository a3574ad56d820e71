//! Xen's paravirtual MMU rules as a pure library.
//!
//! * [`abi`] and [`pte`]: Xen's PV x86_64 ABI and x86-64 paging bits. `no_std`,
//!   dependency-free; the guest kernel shares them.
//! * With the `std` feature: the validator — Xen's page types, type counts, pinning
//!   and validated PTE updates over guest memory seen through a small trait.
#![cfg_attr(not(feature = "std"), no_std)]

pub mod abi;
pub mod pte;
