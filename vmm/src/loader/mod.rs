//! Kernel image loading.

pub mod bzimage;
pub mod elf;
