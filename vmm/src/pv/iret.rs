//! `HYPERVISOR_iret` (Xen's `pv/iret.c` `do_iret`) and the kernel/user switch
//! (`pv/domain.c` `toggle_guest_mode`).
//!
//! The guest jumps to the iret stub with Xen's frame on its stack; the stub pushes rcx, r11
//! and rax, so at the exit `rsp` points at a complete `iret_context`.

use super::flags;
use super::traps::DomainCrash;
use crate::hypercall::Hypervisor;
use pagetable_validator::abi::shinfo::VI_UPCALL_MASK as VCPU_INFO_UPCALL_MASK;
use pagetable_validator::abi::x86::{IretContext, VGCF_IN_SYSCALL};
use vm_memory::ByteValued;

// SAFETY: IretContext is repr(C), nine u64 fields, no padding; any bit pattern is valid.
unsafe impl ByteValued for Wrapper {}

/// `IretContext` as a vm-memory `ByteValued` (the ABI type lives in a no_std crate).
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
struct Wrapper(IretContext);

impl Hypervisor {
    /// `do_iret`: returns the value for rax, or crashes the domain.
    pub fn do_iret(&mut self) -> Result<(), DomainCrash> {
        let rsp = self.vcpu.cpu.regs.rsp;
        let cr3 = self.vcpu.cpu.sregs.cr3;
        let mut w = Wrapper::default();
        if let Err(f) = self.ram.read_virt(cr3, rsp, w.as_mut_slice()) {
            return Err(DomainCrash(format!(
                "Fault while reading IRET context from guest stack ({f})"
            )));
        }
        let c = w.0;
        if c.cs & 3 == 3 {
            if self.validator.user_base().is_none() {
                return Err(DomainCrash(
                    "Guest switching to user mode with no user page tables".into(),
                ));
            }
            self.toggle_guest_mode()
                .map_err(|e| DomainCrash(format!("iret to user mode: {e}")))?;
        }
        if self.vcpu.pv.vm_assist
            & (1 << pagetable_validator::abi::vmasst::VMASST_TYPE_ARCHITECTURAL_IOPL)
            != 0
        {
            self.vcpu.pv.iopl = c.rflags & flags::IOPL;
        }
        let regs = self.vcpu.cpu.regs_mut();
        regs.rip = c.rip;
        regs.rflags = (c.rflags & flags::ALL & !(flags::IOPL | flags::VM)) | flags::IF | flags::MBS;
        regs.rsp = c.rsp;
        if c.flags & VGCF_IN_SYSCALL == 0 {
            regs.r11 = c.r11;
            regs.rcx = c.rcx;
        }
        regs.rax = c.rax;
        self.vcpu.cpu.set_guest_segments(c.cs as u16, c.ss as u16);
        // Restore the upcall mask from the supplied EFLAGS.IF.
        let mask = u8::from(c.rflags & flags::IF == 0);
        if self.vcpu_info_writable() {
            self.ram
                .write_phys(self.vcpu.pv.vcpu_info_gpa + VCPU_INFO_UPCALL_MASK, &[mask]);
        }
        self.stats.irets += 1;
        Ok(())
    }

    /// `toggle_guest_mode`: kernel <-> user, with the other mode's page tables and GS base.
    pub fn toggle_guest_mode(&mut self) -> Result<(), String> {
        let pv = &mut self.vcpu.pv;
        pv.kernel_mode = !pv.kernel_mode;
        let base = if pv.kernel_mode {
            self.validator.current_base()
        } else {
            self.validator.user_base()
        };
        let Some(base) = base else {
            return Err("no page tables for that mode".into());
        };
        let other = pv.gs_base_other;
        let s = self.vcpu.cpu.sregs_mut();
        pv.gs_base_other = s.gs.base;
        s.gs.base = other;
        s.cr3 = base.maddr();
        self.stats.mode_switches += 1;
        Ok(())
    }
}
