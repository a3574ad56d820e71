//! Entry point and image furniture (Linux: arch/x86/xen/xen-head.S).
//!
//! * `_start`: Xen enters here in 64-bit mode with `rsi` = virtual address of `start_info`.
//!   We switch to our own boot stack (in .bss) and call [`crate::setup::start_kernel`].
//! * The Xen ELF notes (section `.note.Xen`, also a PT_NOTE segment) tell the domain builder
//!   what we are and where things live.
//! * `hypercall_page`: one page-aligned page the hypervisor fills with its call stubs.
//!
//! Nothing here uses a privileged instruction: under Xen the guest kernel runs in ring 3.

use pagetable_validator::abi::elfnote;
use pagetable_validator::pte::layout::KERNEL_BASE;

/// Size of the boot stack. The guest is single-threaded and takes no interrupts.
pub const BOOT_STACK_SIZE: usize = 64 * 1024;

core::arch::global_asm!(
    // One Xen ELF note: namesz, descsz, type, "Xen\0", then the descriptor between
    // XEN_NOTE_BEGIN and XEN_NOTE_END, all 4-byte aligned. Each type appears once, so the
    // type number makes the labels unique.
    ".macro XEN_NOTE_BEGIN type",
    ".balign 4",
    ".long 4",
    ".long .Lxen_desc_end_\\type - .Lxen_desc_\\type",
    ".long \\type",
    ".asciz \"Xen\"",
    ".balign 4",
    ".Lxen_desc_\\type:",
    ".endm",
    ".macro XEN_NOTE_END type",
    ".Lxen_desc_end_\\type:",
    ".balign 4",
    ".endm",
    "",
    ".pushsection .note.Xen, \"a\", @note",
    "XEN_NOTE_BEGIN {guest_os}",
    ".asciz \"linux\"",
    "XEN_NOTE_END {guest_os}",
    "XEN_NOTE_BEGIN {xen_version}",
    ".asciz \"xen-3.0\"",
    "XEN_NOTE_END {xen_version}",
    "XEN_NOTE_BEGIN {loader}",
    ".asciz \"generic\"",
    "XEN_NOTE_END {loader}",
    "XEN_NOTE_BEGIN {virt_base}",
    ".quad {kernel_base}",
    "XEN_NOTE_END {virt_base}",
    // p_paddr == p_vaddr, so the paddr offset equals VIRT_BASE (virt = paddr - offset + base).
    "XEN_NOTE_BEGIN {paddr_offset}",
    ".quad {kernel_base}",
    "XEN_NOTE_END {paddr_offset}",
    "XEN_NOTE_BEGIN {entry}",
    ".quad _start",
    "XEN_NOTE_END {entry}",
    "XEN_NOTE_BEGIN {hypercall_page_note}",
    ".quad hypercall_page",
    "XEN_NOTE_END {hypercall_page_note}",
    ".popsection",
    "",
    ".pushsection .hypercall_page, \"ax\"",
    ".balign 4096",
    ".global hypercall_page",
    "hypercall_page:",
    // int3 everywhere until the hypervisor writes its stubs.
    ".fill 4096, 1, 0xcc",
    ".popsection",
    "",
    ".pushsection .bss.boot_stack, \"aw\", @nobits",
    ".balign 16",
    "boot_stack:",
    ".skip {stack_size}",
    "boot_stack_top:",
    ".popsection",
    "",
    ".pushsection .text.head, \"ax\"",
    ".global _start",
    "_start:",
    "lea rsp, [rip + boot_stack_top]",
    "mov rdi, rsi",
    "call {start_kernel}",
    // start_kernel never returns; if it did, spin rather than run off the end.
    ".Lspin: jmp .Lspin",
    ".popsection",
    guest_os = const elfnote::GUEST_OS,
    xen_version = const elfnote::XEN_VERSION,
    loader = const elfnote::LOADER,
    virt_base = const elfnote::VIRT_BASE,
    paddr_offset = const elfnote::PADDR_OFFSET,
    entry = const elfnote::ENTRY,
    hypercall_page_note = const elfnote::HYPERCALL_PAGE,
    kernel_base = const KERNEL_BASE,
    stack_size = const BOOT_STACK_SIZE,
    start_kernel = sym crate::setup::start_kernel,
);
