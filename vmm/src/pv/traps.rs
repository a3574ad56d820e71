//! Exceptions and software interrupts for a 64-bit PV guest (Xen's `pv/traps.c`
//! `pv_inject_event` and `x86_64/entry.S` `create_bounce_frame`).
//!
//! An exception at CPL 3 enters a ring-0 stub of the Xen area that exits at once on a port
//! naming the vector; [`read_stub_frame`] reads the CPU's frame from the TSS stack. The event is then either emulated (pv/emul_priv_op.rs) or *bounced*:
//! a frame `{ rcx, r11, [error code], rip, cs | saved_upcall_mask << 32, rflags, rsp, ss }`
//! is written on the guest kernel stack (switching to guest kernel mode and the `stack_switch`
//! stack first if the guest was in user mode) and the vCPU resumes at the handler from the
//! guest's trap table. A frame that cannot be written crashes the domain, as in Xen.

use super::{flags, xen_area};
use crate::hypercall::Hypervisor;
use pagetable_validator::abi::shinfo;
use pagetable_validator::abi::x86 as xen;
use std::fmt;

pub const X86_EXC_BP: u8 = 3;
pub const X86_EXC_UD: u8 = 6;
pub const X86_EXC_NM: u8 = 7;
pub const X86_EXC_DF: u8 = 8;
pub const X86_EXC_GP: u8 = 13;
pub const X86_EXC_PF: u8 = 14;

/// Page-fault error code: the access was from user mode.
pub const PFEC_USER: u32 = 1 << 2;

/// What a vector stub saw: the vector (from its port), the error code (0 where the CPU
/// pushes none) and the hardware frame the CPU pushed on the TSS stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StubFrame {
    pub vector: u8,
    pub error_code: u32,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Reads the CPU's frame at `rsp` (the ring-0 stack, inside the Xen area) for `vector`.
pub fn read_stub_frame(hv: &Hypervisor, vector: u8, rsp: u64) -> Option<StubFrame> {
    let n = if xen_area::has_error_code(vector) {
        6
    } else {
        5
    };
    let mut w = [0u64; 6];
    for (i, slot) in w.iter_mut().take(n).enumerate() {
        let gpa = hv.xen.pd_gpa(rsp.checked_add(i as u64 * 8)?)?;
        *slot = hv.ram.read_u64_phys(gpa)?;
    }
    let (ec, f) = if n == 6 {
        (w[0] as u32, &w[1..])
    } else {
        (0, &w[..5])
    };
    Some(StubFrame {
        vector,
        error_code: ec,
        rip: f[0],
        cs: f[1],
        rflags: f[2],
        rsp: f[3],
        ss: f[4],
    })
}

/// An event to deliver to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestEvent {
    /// A hardware exception; `error_code` for the vectors that have one; `cr2` for #PF.
    Exception {
        vector: u8,
        error_code: Option<u32>,
        cr2: Option<u64>,
    },
    /// `int n` permitted by the trap table's DPL (the return address is after the `int`).
    SoftInt { vector: u8 },
}

/// Why the domain was crashed (Xen's `domain_crash`), for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainCrash(pub String);

impl fmt::Display for DomainCrash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Xen's `trap_bounce` flags.
#[derive(Clone, Copy, Debug, Default)]
pub struct Bounce {
    pub eip: u64,
    pub error_code: Option<u32>,
    /// TBF_INTERRUPT: mask events on entry.
    pub mask_events: bool,
}

pub fn vector_name(v: u8) -> &'static str {
    const N: [&str; 32] = [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF?", "#TS", "#NP", "#SS",
        "#GP", "#PF", "#SPV", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "", "", "", "", "", "",
        "#HV", "#VC", "#SX", "",
    ];
    N.get(usize::from(v)).copied().unwrap_or("")
}

impl Hypervisor {
    /// `pv_inject_event`: bounce `ev` through the guest's trap table.
    pub fn inject_event(&mut self, ev: GuestEvent) -> Result<(), DomainCrash> {
        let (vector, mut error_code) = match ev {
            GuestEvent::Exception {
                vector, error_code, ..
            } => (vector, error_code),
            GuestEvent::SoftInt { vector } => (vector, None),
        };
        let ti = self.vcpu.pv.trap_ctxt[usize::from(vector)];
        if let GuestEvent::Exception {
            vector: X86_EXC_PF,
            cr2: Some(cr2),
            ..
        } = ev
        {
            // The guest reads CR2 from its vcpu_info (`arch_set_cr2`).
            if self.vcpu_info_writable() {
                self.ram
                    .write_u64_phys(self.vcpu.pv.vcpu_info_gpa + shinfo::VI_CR2, cr2);
            }
            self.vcpu.cpu.sregs_mut().cr2 = cr2;
            // Re-set the user-mode bit from the guest's point of view.
            if let Some(ec) = error_code.as_mut() {
                *ec &= !PFEC_USER;
                if !self.vcpu.pv.kernel_mode {
                    *ec |= PFEC_USER;
                }
            }
        }
        self.stats.bounces += 1;
        if ti.address == 0 {
            let what = format!(
                "Unhandled: vec {vector}, {}[{:04x}]",
                vector_name(vector),
                error_code.unwrap_or(0)
            );
            log::info!("{what}");
            return Err(DomainCrash(format!(
                "{what}: no handler in the trap table (create_bounce_frame: bad bounce ip)"
            )));
        }
        self.create_bounce_frame(Bounce {
            eip: ti.address,
            error_code,
            mask_events: ti.flags & 4 != 0,
        })
    }

    /// `create_bounce_frame`: push Xen's exception frame on the guest kernel stack and enter
    /// `b.eip` in guest kernel mode. The frame describes the vCPU's current register image.
    pub fn create_bounce_frame(&mut self, b: Bounce) -> Result<(), DomainCrash> {
        let from_user = !self.vcpu.pv.kernel_mode;
        let r = self.vcpu.cpu.regs;
        let s = self.vcpu.cpu.sregs;
        let mut cs = u64::from(s.cs.selector);
        let mut rsp = if from_user {
            self.toggle_guest_mode()
                .map_err(|e| DomainCrash(format!("bounce from user mode: {e}")))?;
            self.vcpu.pv.kernel_sp
        } else {
            cs &= !3; // "Indicate kernel context to guest."
            r.rsp
        };
        rsp &= !0xf;
        if rsp > xen::HYPERVISOR_VIRT_START && rsp < xen::HYPERVISOR_VIRT_END + 64 {
            return Err(DomainCrash(format!(
                "create_bounce_frame: guest stack {rsp:#x} in Xen's area"
            )));
        }
        let mask_byte = self.vcpu.pv.vcpu_info_gpa + shinfo::VI_UPCALL_MASK;
        let saved_mask = self.ram.read_phys_u8(mask_byte).unwrap_or(0);
        let mut rflags = r.rflags & !(flags::IF | flags::IOPL);
        if saved_mask == 0 {
            rflags |= flags::IF;
        }
        if self.vcpu.pv.vm_assist
            & (1 << pagetable_validator::abi::vmasst::VMASST_TYPE_ARCHITECTURAL_IOPL)
            != 0
        {
            rflags |= self.vcpu.pv.iopl;
        }
        let mut frame: Vec<u64> = vec![r.rcx, r.r11];
        if let Some(ec) = b.error_code {
            frame.push(u64::from(ec));
        }
        frame.extend_from_slice(&[
            r.rip,
            cs | (u64::from(saved_mask) << 32),
            rflags,
            r.rsp,
            u64::from(s.ss.selector),
        ]);
        let base = rsp.wrapping_sub(frame.len() as u64 * 8);
        let bytes: Vec<u8> = frame.iter().flat_map(|w| w.to_le_bytes()).collect();
        let cr3 = self.vcpu.cpu.sregs.cr3;
        // Never into a validated table, even through a mapping audit mode tolerates.
        if let Err(f) = self.write_guest(cr3, base, &bytes) {
            return Err(DomainCrash(format!(
                "create_bounce_frame: cannot write the exception frame at {base:#x} on the guest kernel stack: {f}"
            )));
        }
        if b.mask_events && self.vcpu_info_writable() {
            self.ram.write_phys(mask_byte, &[1]);
        }
        let regs = self.vcpu.cpu.regs_mut();
        regs.rflags &= !(flags::AC | flags::VM | flags::RF | flags::NT | flags::TF);
        regs.rsp = base;
        regs.rip = b.eip;
        self.vcpu
            .cpu
            .set_guest_segments(xen::FLAT_KERNEL_CS, xen::FLAT_KERNEL_SS);
        Ok(())
    }
}

/// Whether the guest may enter a trap-table entry of this DPL with `int n` (`permit_softint`).
pub fn permit_softint(dpl: u8, kernel_mode: bool) -> bool {
    dpl >= if kernel_mode { 1 } else { 3 }
}
