//! xenkvm-guest: a small Xen PV x86_64 kernel with Linux's names and structure.
//!
//! It boots as a genuine PV guest (real Xen 4.17 as dom0, or the project's VMM), never uses
//! a privileged instruction, and runs one scenario chosen on the command line
//! (`scenario=NAME variant=NAME`), printing a transcript of `T<nn> <what> rc=<rc>` lines and a
//! final `END` line that must be identical under any hypervisor.
#![no_std]
#![no_main]

mod cmdline;
mod console;
mod head;
mod hypercall;
mod mm;
mod panic;
mod reboot;
mod scenarios;
mod setup;
mod string;
