//! x86_64 PV CPU ABI: selectors, the hypervisor's address range, trap and callback
//! registration, `HYPERVISOR_iret` (`arch-x86/xen-x86_64.h`, `arch-x86/xen.h`, `callback.h`)
//! and the few facts of Xen's own GDT a PV kernel depends on (`asm/desc.h`, `asm/config.h`).

/// Flat ring-3 selectors in Xen's reserved GDT page; 64-bit PV kernels run on them.
pub const FLAT_RING3_CS32: u16 = 0xe023;
pub const FLAT_RING3_CS64: u16 = 0xe033;
pub const FLAT_RING3_DS32: u16 = 0xe02b;
pub const FLAT_RING3_DS64: u16 = 0x0000;
pub const FLAT_RING3_SS64: u16 = 0xe02b;
pub const FLAT_KERNEL_CS: u16 = FLAT_RING3_CS64;
pub const FLAT_KERNEL_SS: u16 = FLAT_RING3_SS64;
pub const FLAT_KERNEL_DS: u16 = FLAT_RING3_DS64;
pub const FLAT_USER_CS32: u16 = FLAT_RING3_CS32;
/// Xen's own ring-0 selectors (`__HYPERVISOR_CS`, `__HYPERVISOR_DS32`).
pub const HYPERVISOR_CS: u16 = 0xe008;
pub const HYPERVISOR_DS32: u16 = 0xe010;

/// The GDT: guest frames (`set_gdt`) below Xen's one reserved page (`FIRST_RESERVED_GDT_PAGE`).
pub const FIRST_RESERVED_GDT_PAGE: u64 = 14;
pub const FIRST_RESERVED_GDT_BYTE: u64 = FIRST_RESERVED_GDT_PAGE * 4096;
pub const FIRST_RESERVED_GDT_ENTRY: u64 = FIRST_RESERVED_GDT_BYTE / 8;
/// `TSS_ENTRY` = FIRST_RESERVED_GDT_ENTRY + 8, a 16-byte system descriptor.
pub const TSS_SELECTOR: u16 = ((FIRST_RESERVED_GDT_ENTRY + 8) << 3) as u16;
/// `LAST_RESERVED_GDT_BYTE` (one reserved page): the GDT limit.
pub const LAST_RESERVED_GDT_BYTE: u64 = (FIRST_RESERVED_GDT_PAGE + 1) * 4096 - 1;

/// `__HYPERVISOR_VIRT_START` .. `__HYPERVISOR_VIRT_END` (L4 slots 256..=271).
pub const HYPERVISOR_VIRT_START: u64 = 0xffff_8000_0000_0000;
pub const HYPERVISOR_VIRT_END: u64 = 0xffff_8800_0000_0000;
/// The read-only M2P every PV guest may read (`machine_to_phys_mapping`).
pub const MACH2PHYS_VIRT_START: u64 = 0xffff_8000_0000_0000;
pub const MACH2PHYS_VIRT_END: u64 = 0xffff_8040_0000_0000;

/// `set_segment_base` selectors (`SEGBASE_*`).
pub const SEGBASE_FS: u64 = 0;
pub const SEGBASE_GS_USER: u64 = 1;
pub const SEGBASE_GS_KERNEL: u64 = 2;
pub const SEGBASE_GS_USER_SEL: u64 = 3;

/// `iret_context.flags`: the guest left through SYSCALL (`VGCF_in_syscall`).
pub const VGCF_IN_SYSCALL: u64 = 1 << 8;

/// One `trap_info` (`set_trap_table`): flags bits 0-1 are the DPL for `int n`, bit 2 masks
/// events on entry (`TI_GET_IF`). A zero `address` ends the table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    pub vector: u8,
    pub flags: u8,
    pub cs: u16,
    pub _pad: u32,
    pub address: u64,
}

/// `struct iret_context`: what the guest pushes before `HYPERVISOR_iret`, lowest first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IretContext {
    pub rax: u64,
    pub r11: u64,
    pub rcx: u64,
    pub flags: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// `callback_op` commands and types (`callback.h`).
pub const CALLBACKOP_REGISTER: u64 = 0;
pub const CALLBACKOP_UNREGISTER: u64 = 1;
pub const CALLBACKTYPE_EVENT: u16 = 0;
pub const CALLBACKTYPE_FAILSAFE: u16 = 1;
pub const CALLBACKTYPE_SYSCALL: u16 = 2;
pub const CALLBACKTYPE_SYSENTER_DEPRECATED: u16 = 3;
pub const CALLBACKTYPE_NMI: u16 = 4;
pub const CALLBACKTYPE_SYSENTER: u16 = 5;
pub const CALLBACKTYPE_SYSCALL32: u16 = 7;
pub const CALLBACKF_MASK_EVENTS: u16 = 1;

/// `struct callback_register` (x86_64: `xen_callback_t` is a plain address).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallbackRegister {
    pub ty: u16,
    pub flags: u16,
    pub _pad: u32,
    pub address: u64,
}
