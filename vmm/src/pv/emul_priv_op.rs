//! #GP and #UD from the guest (Xen's `pv/emul-priv-op.c`, `pv/emul-inv-op.c`): the forced
//! emulation prefix (`ud2a; .ascii "xen"; cpuid`) and the privileged instructions Xen
//! emulates for PV kernels. Instructions are decoded with iced-x86.

use super::traps::DomainCrash;
use crate::hypercall::Hypervisor;

/// Xen's forced-emulation signature: `ud2a` then "xen".
pub const FEP: [u8; 5] = [0x0f, 0x0b, b'x', b'e', b'n'];

/// What an emulation attempt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulated {
    /// Done: registers updated, rip past the instruction (or an event injected).
    Yes,
    /// Not an instruction Xen emulates here: deliver the original exception.
    No,
}

impl Hypervisor {
    /// #UD: `emulate_forced_invalid_op` (FEP + CPUID only, as Xen 4.17 for PV).
    pub fn emulate_invalid_op(&mut self) -> Result<Emulated, DomainCrash> {
        let rip = self.vcpu.cpu.regs.rip;
        let cr3 = self.vcpu.cpu.sregs.cr3;
        let mut b = [0u8; 7];
        if self.ram.read_virt(cr3, rip, &mut b).is_err() || b[..5] != FEP || b[5..] != [0x0f, 0xa2] {
            return Ok(Emulated::No);
        }
        let r = self.vcpu.cpu.regs;
        let [a, bb, c, d] = self.pv_cpuid(r.rax as u32, r.rcx as u32);
        let regs = self.vcpu.cpu.regs_mut();
        regs.rax = u64::from(a);
        regs.rbx = u64::from(bb);
        regs.rcx = u64::from(c);
        regs.rdx = u64::from(d);
        regs.rip = rip + 7;
        regs.rflags &= !super::flags::RF;
        self.stats.emulated += 1;
        Ok(Emulated::Yes)
    }

    /// #GP(0): `pv_emulate_privileged_op`.
    pub fn emulate_privileged_op(&mut self) -> Result<Emulated, DomainCrash> {
        Ok(Emulated::No)
    }
}
