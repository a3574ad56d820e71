//! The PV CPU ABI, in Xen's shape (`xen/arch/x86/pv/`): the guest kernel runs at CPL 3 and
//! every transition into the hypervisor is a vCPU exit that lands here.
//!
//! * [`xen_area`] — the ring-0 Xen area (GDT, IDT, TSS, entry stubs, M2P, direct map);
//! * [`traps`] — exceptions and software interrupts: decoding the ring-0 stub's frame, Xen's
//!   `pv_inject_event` + `create_bounce_frame`, the trap table;
//! * [`iret`] — `HYPERVISOR_iret`, and the kernel/user mode switch (`toggle_guest_mode`);
//! * [`callbacks`] — `set_trap_table`, `callback_op`, `set_callbacks`, `stack_switch`,
//!   SYSCALL/SYSENTER from guest user mode;
//! * [`emul_priv_op`] — #GP/#UD from the guest: Xen's forced-emulation prefix, privileged
//!   instructions Xen emulates for PV kernels;
//! * [`cpuid`] — Xen's PV CPUID policy;
//! * [`cpu_ops`] — `set_segment_base`, `fpu_taskswitch`, `set/get_debugreg`, `vm_assist`,
//!   `physdev_op` set_iopl;
//! * [`descriptors`] — `set_gdt`, `update_descriptor` and the GDT the CPU uses;
//! * [`ptwr`] — writable pagetables: guest writes into its pinned L1s, validated;
//! * [`event_channel`] — event channels (2-level and FIFO ABIs) and their delivery state;
//! * [`time`] — PV time (vcpu_time_info, wall clock), timers, block/poll, runstate.
//!
//! [`Vcpu`] holds one vCPU's PV state and its register image; the vCPU loop (vcpu/) loads
//! the image at each exit, the handlers change it, and the loop writes back what changed.

pub mod callbacks;
pub mod cpu_ops;
pub mod cpuid;
mod cpuid_mask;
pub mod descriptors;
pub mod emul_priv_op;
pub mod event_channel;
pub mod iret;
pub mod ptwr;
pub mod time;
pub mod traps;
pub mod xen_area;
pub mod xstate;

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};
use pagetable_validator::abi::x86::{self as xen, TrapInfo};

/// RFLAGS bits.
pub mod flags {
    pub const CF: u64 = 1 << 0;
    pub const MBS: u64 = 1 << 1;
    pub const TF: u64 = 1 << 8;
    pub const IF: u64 = 1 << 9;
    pub const DF: u64 = 1 << 10;
    pub const IOPL: u64 = 3 << 12;
    pub const NT: u64 = 1 << 14;
    pub const RF: u64 = 1 << 16;
    pub const VM: u64 = 1 << 17;
    pub const AC: u64 = 1 << 18;
    /// `X86_EFLAGS_ALL`: every architecturally defined bit.
    pub const ALL: u64 = 0x003f_7fd5;
}

/// A callback's entry and whether entering it masks events.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Callback {
    pub address: u64,
    pub mask_events: bool,
}

/// Callbacks registered with `callback_op` / `set_callbacks`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Callbacks {
    pub event: u64,
    pub failsafe: u64,
    pub syscall: Callback,
    pub syscall32: Callback,
    pub sysenter: Callback,
    pub nmi: u64,
}

/// One vCPU's PV state (Xen's `struct pv_vcpu` and `TF_kernel_mode`).
pub struct PvState {
    /// Guest kernel mode (Xen's `TF_kernel_mode`); both modes run at CPL 3.
    pub kernel_mode: bool,
    /// The virtual IDT (`set_trap_table`).
    pub trap_ctxt: Box<[TrapInfo; 256]>,
    pub callbacks: Callbacks,
    /// `stack_switch`: the kernel stack a bounce from user mode lands on.
    pub kernel_ss: u64,
    pub kernel_sp: u64,
    /// The GS base of the mode not running (the other one is in the segment register).
    pub gs_base_other: u64,
    /// Virtual CR0.TS (`fpu_taskswitch`).
    pub ctrlreg0_ts: bool,
    /// The CR4 the guest reads (`ctrlreg[4]`): PAE, OSFXSR, OSXMMEXCPT as it runs with.
    pub ctrlreg4: u64,
    /// Debug registers as the guest set them (`set_debugreg`).
    pub dr: [u64; 8],
    /// Virtual IOPL (`physdev_op` set_iopl, or iret with `architectural_iopl`), bits 12-13.
    pub iopl: u64,
    /// vm_assist types enabled.
    pub vm_assist: u64,
    /// Guest-physical address of this vCPU's `vcpu_info`.
    pub vcpu_info_gpa: u64,
    /// XCR0 as the guest set it (`xsetbv`, see `xstate.rs`; Xen's `v->arch.xcr0`).
    pub xcr0: u64,
}

impl PvState {
    pub fn new(vcpu_info_gpa: u64) -> Self {
        PvState {
            kernel_mode: true,
            trap_ctxt: Box::new([TrapInfo::default(); 256]),
            callbacks: Callbacks::default(),
            kernel_ss: 0,
            kernel_sp: 0,
            gs_base_other: 0,
            ctrlreg0_ts: false,
            ctrlreg4: crate::arch::CR4_PAE | crate::arch::CR4_OSFXSR | crate::arch::CR4_OSXMMEXCPT,
            dr: [0; 8],
            iopl: 0,
            vm_assist: 0,
            vcpu_info_gpa,
            xcr0: xstate::XSTATE_FP_SSE,
        }
    }
}

/// The register image of a vCPU between two KVM_RUNs.
#[derive(Clone, Default)]
pub struct CpuImage {
    pub regs: kvm_regs,
    pub sregs: kvm_sregs,
    pub regs_dirty: bool,
    pub sregs_dirty: bool,
    /// An XCR0 to load before the next entry (the guest's `xsetbv`).
    pub xcr0_pending: Option<u64>,
}

impl CpuImage {
    pub fn regs_mut(&mut self) -> &mut kvm_regs {
        self.regs_dirty = true;
        &mut self.regs
    }
    pub fn sregs_mut(&mut self) -> &mut kvm_sregs {
        self.sregs_dirty = true;
        &mut self.sregs
    }
    pub fn cpl(&self) -> u8 {
        self.sregs.cs.dpl
    }

    /// Loads CS and SS with the flat ring-3 segments of Xen's reserved GDT entries (the only
    /// code/stack segments a 64-bit PV guest runs on; RPL 3 forced as Xen's iret does).
    pub fn set_guest_segments(&mut self, cs: u16, ss: u16) {
        let s = self.sregs_mut();
        s.cs = flat_segment(cs | 3, cs & !3 != xen::FLAT_RING3_CS32 & !3);
        s.ss = kvm_segment {
            type_: 3,
            s: 1,
            l: 0,
            db: 1,
            ..flat_segment(ss | 3, false)
        };
    }
}

/// A flat DPL-3 code segment (64-bit if `long`, else 32-bit compatibility mode).
pub fn flat_segment(selector: u16, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: 0xb,
        present: 1,
        dpl: 3,
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// One vCPU: its id, PV state and register image. The Hypervisor keeps one per vCPU.
pub struct Vcpu {
    /// vCPU number (the `vcpu_info` slot, VCPUOP_* target).
    #[allow(dead_code)]
    pub id: u32,
    pub pv: PvState,
    pub cpu: CpuImage,
}
