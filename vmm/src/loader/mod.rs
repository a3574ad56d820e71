//! Kernel image loading.

pub mod elf;
