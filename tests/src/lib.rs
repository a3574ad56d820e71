//! Shared helpers for the integration tests.
//!
//! * [`guest`]: `guest_elf()` builds the guest kernel and returns its path; `repo_root()`.
//! * [`real_xen`]: `run_on_xen(elf, cmdline)` boots it as dom0 of real Xen 4.17 in QEMU
//!   (`run_on_xen_with` adds a timeout, another Xen build, extra Xen arguments);
//!   `qemu_or_skip(test)` implements the CI rule for a missing QEMU.
//! * [`linux`]: Debian's kernel (`scripts/fetch-linux.sh`), the project's initramfs
//!   (`scripts/build-initramfs.sh`), booting them on real Xen; `linux_or_skip(test)` implements
//!   the CI rule for packages that cannot be had.
//! * [`manifest`]: `guest/scenarios.manifest` parsed (`manifest()`, `Case`, `Prov`).
//! * [`transcript`]: parses and checks the guest's `T<nn> ... rc=<rc>` / `END` transcript;
//!   `transcript::diff(left, a, right, b)` reports differing lines (real Xen vs VMM).
#![forbid(unsafe_code)]

pub mod guest;
pub mod linux;
pub mod manifest;
pub mod real_xen;
pub mod transcript;
