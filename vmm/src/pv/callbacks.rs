//! Entry points the guest registers (Xen's `pv/callback.c`): the trap table, callbacks,
//! `stack_switch`; and SYSCALL/SYSENTER from guest user mode, bounced to them
//! (`x86_64/entry.S` `switch_to_kernel`).

use super::traps::{Bounce, DomainCrash, GuestEvent, X86_EXC_UD};
use super::{flags, Callback};
use crate::hypercall::{err, Ctx, Hypervisor};
use pagetable_validator::abi::errno;
use pagetable_validator::abi::x86::{self as xen, CallbackRegister, TrapInfo};
use pagetable_validator::pte::is_canonical;

/// Entries `set_trap_table` reads per exit before it continues itself (Xen preempts too).
const TRAP_TABLE_BUDGET: u64 = 64;

impl Hypervisor {
    /// `set_trap_table(traps)`: entries until one with address 0; a null handle clears all.
    pub(crate) fn set_trap_table(&mut self, ctx: &mut Ctx, a: [u64; 6]) -> i64 {
        let mut p = a[0];
        if p == 0 {
            self.vcpu.pv.trap_ctxt.fill(TrapInfo::default());
            return 0;
        }
        for i in 0.. {
            if i == TRAP_TABLE_BUDGET {
                return ctx.create_continuation(
                    pagetable_validator::abi::hypercall::SET_TRAP_TABLE,
                    a,
                    &[(0, p)],
                );
            }
            let mut b = [0u8; 16];
            if !super::super::hypercall::handle_okay(p) {
                return err(errno::EFAULT);
            }
            if let Err(f) = self.ram.read_virt(ctx.cr3, p, &mut b) {
                return self.efault(ctx, "set_trap_table", "trap_info", f);
            }
            let ti = TrapInfo {
                vector: b[0],
                flags: b[1],
                cs: u16::from_le_bytes([b[2], b[3]]),
                _pad: 0,
                address: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
            };
            if ti.address == 0 {
                break;
            }
            if !is_canonical(ti.address) {
                return err(errno::EINVAL);
            }
            let cs = fixup_guest_code_selector(ti.cs);
            self.vcpu.pv.trap_ctxt[usize::from(ti.vector)] = TrapInfo { cs, ..ti };
            p = p.wrapping_add(16);
        }
        0
    }

    /// `callback_op(cmd, arg)`.
    pub(crate) fn callback_op(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> i64 {
        match cmd {
            xen::CALLBACKOP_REGISTER => {
                let mut b = [0u8; 16];
                if !super::super::hypercall::handle_okay(arg) {
                    return err(errno::EFAULT);
                }
                if let Err(f) = self.ram.read_virt(ctx.cr3, arg, &mut b) {
                    return self.efault(ctx, "callback_op", "callback_register", f);
                }
                let reg = CallbackRegister {
                    ty: u16::from_le_bytes([b[0], b[1]]),
                    flags: u16::from_le_bytes([b[2], b[3]]),
                    _pad: 0,
                    address: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
                };
                self.register_callback(reg)
            }
            xen::CALLBACKOP_UNREGISTER => {
                let mut b = [0u8; 4];
                if !super::super::hypercall::handle_okay(arg) {
                    return err(errno::EFAULT);
                }
                if let Err(f) = self.ram.read_virt(ctx.cr3, arg, &mut b) {
                    return self.efault(ctx, "callback_op", "callback_unregister", f);
                }
                match u16::from_le_bytes([b[0], b[1]]) {
                    xen::CALLBACKTYPE_EVENT
                    | xen::CALLBACKTYPE_FAILSAFE
                    | xen::CALLBACKTYPE_SYSCALL
                    | xen::CALLBACKTYPE_SYSCALL32
                    | xen::CALLBACKTYPE_SYSENTER => err(errno::EINVAL),
                    xen::CALLBACKTYPE_NMI => {
                        self.vcpu.pv.trap_ctxt[2] = TrapInfo::default();
                        self.vcpu.pv.callbacks.nmi = 0;
                        0
                    }
                    _ => err(errno::ENOSYS),
                }
            }
            _ => err(errno::ENOSYS),
        }
    }

    /// `register_guest_callback`.
    fn register_callback(&mut self, reg: CallbackRegister) -> i64 {
        if !is_canonical(reg.address) {
            return err(errno::EINVAL);
        }
        let mask = reg.flags & xen::CALLBACKF_MASK_EVENTS != 0;
        let cb = Callback {
            address: reg.address,
            mask_events: mask,
        };
        let c = &mut self.vcpu.pv.callbacks;
        match reg.ty {
            xen::CALLBACKTYPE_EVENT => c.event = reg.address,
            xen::CALLBACKTYPE_FAILSAFE => c.failsafe = reg.address,
            xen::CALLBACKTYPE_SYSCALL => c.syscall = cb,
            xen::CALLBACKTYPE_SYSCALL32 => c.syscall32 = cb,
            xen::CALLBACKTYPE_SYSENTER => c.sysenter = cb,
            xen::CALLBACKTYPE_NMI => {
                c.nmi = reg.address;
                // register_guest_nmi_callback: trap 2, events masked on entry.
                self.vcpu.pv.trap_ctxt[2] = TrapInfo {
                    vector: 2,
                    flags: 4,
                    cs: xen::FLAT_KERNEL_CS,
                    _pad: 0,
                    address: reg.address,
                };
            }
            _ => return err(errno::ENOSYS),
        }
        0
    }

    /// `set_callbacks(event, failsafe, syscall)`: registers all three, always 0.
    pub(crate) fn set_callbacks(&mut self, a: [u64; 6]) -> i64 {
        for (ty, address) in [
            (xen::CALLBACKTYPE_EVENT, a[0]),
            (xen::CALLBACKTYPE_FAILSAFE, a[1]),
            (xen::CALLBACKTYPE_SYSCALL, a[2]),
        ] {
            self.register_callback(CallbackRegister {
                ty,
                flags: 0,
                _pad: 0,
                address,
            });
        }
        0
    }

    /// `stack_switch(ss, esp)`.
    pub(crate) fn stack_switch(&mut self, ss: u64, sp: u64) -> i64 {
        self.vcpu.pv.kernel_ss = u64::from(fixup_guest_code_selector(ss as u16));
        self.vcpu.pv.kernel_sp = sp;
        0
    }

    /// SYSCALL (`compat`: from 32-bit code) in guest user mode: `switch_to_kernel`. The CPU
    /// left rcx = the return address and r11 = rflags; the frame shows them as rip/rflags.
    pub fn syscall_from_user(&mut self, compat: bool) -> Result<(), DomainCrash> {
        let r = self.vcpu.cpu.regs;
        {
            let regs = self.vcpu.cpu.regs_mut();
            regs.rip = r.rcx;
            regs.rflags = r.r11;
        }
        let cb = if compat || self.vcpu.cpu.sregs.cs.l == 0 {
            self.vcpu.pv.callbacks.syscall32
        } else {
            self.vcpu.pv.callbacks.syscall
        };
        self.stats.syscalls += 1;
        if cb.address == 0 {
            // No callback: #UD at the SYSCALL instruction.
            self.vcpu.cpu.regs_mut().rip = r.rcx.wrapping_sub(2);
            return self.inject_event(GuestEvent::Exception {
                vector: X86_EXC_UD,
                error_code: None,
                cr2: None,
            });
        }
        self.create_bounce_frame(Bounce {
            eip: cb.address,
            error_code: None,
            mask_events: cb.mask_events,
        })?;
        self.vcpu.cpu.regs_mut().rflags &= !flags::DF;
        Ok(())
    }

    /// SYSENTER in guest user mode: the CPU saved neither rip nor rsp (Xen's frame shows 0),
    /// and without a callback the guest gets #GP(0) (`sysenter_entry`).
    pub fn sysenter_from_user(&mut self) -> Result<(), DomainCrash> {
        let cb = self.vcpu.pv.callbacks.sysenter;
        {
            let regs = self.vcpu.cpu.regs_mut();
            regs.rip = 0;
            regs.rsp = 0;
        }
        self.stats.syscalls += 1;
        if cb.address == 0 {
            return self.inject_event(GuestEvent::Exception {
                vector: super::traps::X86_EXC_GP,
                error_code: Some(0),
                cr2: None,
            });
        }
        self.create_bounce_frame(Bounce {
            eip: cb.address,
            error_code: None,
            mask_events: cb.mask_events,
        })
    }
}

/// `fixup_guest_code_selector` for a 64-bit PV guest (`GUEST_KERNEL_RPL` 3): any RPL below
/// 3 becomes 3.
fn fixup_guest_code_selector(sel: u16) -> u16 {
    sel | 3
}
