//! Small PV CPU hypercalls (Xen's `pv/misc-hypercalls.c`, `common/domain.c` `do_vm_assist`,
//! `physdev.c` set_iopl): segment bases, virtual CR0.TS, debug registers, vm_assist, IOPL.

use crate::hypercall::{err, Ctx, Hypervisor};
use pagetable_validator::abi::errno;
use pagetable_validator::abi::x86 as xen;
use pagetable_validator::pte::is_canonical;
use pagetable_validator::Mfn;

use pagetable_validator::abi::vmasst::*;

/// `PV64_VM_ASSIST_MASK`: the types Xen 4.17 accepts from a 64-bit PV guest.
pub const PV64_VM_ASSIST_MASK: u64 = (1 << VMASST_TYPE_4GB_SEGMENTS)
    | (1 << VMASST_TYPE_4GB_SEGMENTS_NOTIFY)
    | (1 << VMASST_TYPE_WRITABLE_PAGETABLES)
    | (1 << VMASST_TYPE_PAE_EXTENDED_CR3)
    | (1 << VMASST_TYPE_ARCHITECTURAL_IOPL)
    | (1 << VMASST_TYPE_RUNSTATE_UPDATE_FLAG)
    | (1 << VMASST_TYPE_M2P_STRICT);

/// CR0.TS.
const CR0_TS: u64 = 1 << 3;

/// DR6/DR7 fixed bits (`DR_STATUS_RESERVED_*`, `DR_CONTROL_RESERVED_*`).
const DR_STATUS_RESERVED_ZERO: u64 = !0xffff_efff;
const DR_STATUS_RESERVED_ONE: u64 = 0xffff_0ff0;
const DR_CONTROL_RESERVED_ZERO: u64 = !0xffff_27ff;
const DR_CONTROL_RESERVED_ONE: u64 = 0x0000_0400;
const DR_GENERAL_DETECT: u64 = 0x0000_2000;
const DR7_ACTIVE_MASK: u64 = 0xff;

impl Hypervisor {
    pub fn m2p_strict(&self) -> bool {
        self.vcpu.pv.vm_assist & (1 << VMASST_TYPE_M2P_STRICT) != 0
    }

    /// `fill_ro_mpt`: the kernel's L4 gets the read-only M2P in slot 256 when it becomes the
    /// base, unless the guest asked for `m2p_strict` (Xen's `new_guest_cr3`).
    pub fn fill_ro_mpt(&mut self, l4: u64) {
        if !self.m2p_strict() {
            self.validator.set_ro_mpt(&mut self.ram, Mfn(l4), true);
        }
    }

    /// `zap_ro_mpt`: no M2P in a user L4 of an m2p_strict guest.
    pub fn zap_ro_mpt(&mut self, l4: u64) {
        self.validator.set_ro_mpt(&mut self.ram, Mfn(l4), false);
    }

    /// `set_segment_base(which, base)`.
    pub(crate) fn set_segment_base(&mut self, which: u64, base: u64) -> i64 {
        let ok = is_canonical(base);
        match which {
            xen::SEGBASE_FS if ok => self.vcpu.cpu.sregs_mut().fs.base = base,
            xen::SEGBASE_GS_KERNEL if ok => {
                if self.vcpu.pv.kernel_mode {
                    self.vcpu.cpu.sregs_mut().gs.base = base;
                } else {
                    self.vcpu.pv.gs_base_other = base;
                }
            }
            xen::SEGBASE_GS_USER if ok => {
                if self.vcpu.pv.kernel_mode {
                    self.vcpu.pv.gs_base_other = base;
                } else {
                    self.vcpu.cpu.sregs_mut().gs.base = base;
                }
            }
            xen::SEGBASE_FS | xen::SEGBASE_GS_KERNEL | xen::SEGBASE_GS_USER => {
                return err(errno::EINVAL)
            }
            xen::SEGBASE_GS_USER_SEL => {
                // Loads user %gs from the GDT: with flat descriptors only, the base is 0 and
                // a NUL or bad selector leaves a NUL %gs (Xen's fixup path).
                let sel = base as u16;
                let sel = if sel > 3 { sel | 3 } else { sel };
                let seg_base = self.descriptor_base(sel).unwrap_or(0);
                if self.vcpu.pv.kernel_mode {
                    self.vcpu.pv.gs_base_other = seg_base;
                } else {
                    self.vcpu.cpu.sregs_mut().gs.base = seg_base;
                }
            }
            _ => return err(errno::EINVAL),
        }
        0
    }

    /// `fpu_taskswitch(set)`: virtual CR0.TS, mirrored in the real CR0 so the next FPU use
    /// raises #NM.
    pub(crate) fn fpu_taskswitch(&mut self, set: u64) -> i64 {
        let set = set as i32 != 0;
        self.vcpu.pv.ctrlreg0_ts = set;
        let s = self.vcpu.cpu.sregs_mut();
        if set {
            s.cr0 |= CR0_TS;
        } else {
            s.cr0 &= !CR0_TS;
        }
        0
    }

    /// #NM: Xen restores the FPU (clears TS) and, if the guest had set its virtual TS,
    /// bounces #NM and clears it.
    pub fn device_not_available(&mut self) -> Result<(), super::traps::DomainCrash> {
        self.vcpu.cpu.sregs_mut().cr0 &= !CR0_TS;
        if self.vcpu.pv.ctrlreg0_ts {
            self.vcpu.pv.ctrlreg0_ts = false;
            return self.inject_event(super::traps::GuestEvent::Exception {
                vector: super::traps::X86_EXC_NM,
                error_code: None,
                cr2: None,
            });
        }
        Ok(())
    }

    /// `set_debugreg(reg, value)`: Xen's checks; the values are kept for `get_debugreg`.
    /// Hardware breakpoints are not armed (no guest debugging through this VMM).
    pub(crate) fn set_debugreg(&mut self, reg: u64, value: u64) -> i64 {
        let dr = &mut self.vcpu.pv.dr;
        // Xen's `int reg`: the match and the index use the same truncated value.
        match reg as i32 {
            r @ 0..=3 => {
                // breakpoint_addr_ok: canonical and below the hypervisor's area.
                if !is_canonical(value)
                    || (xen::HYPERVISOR_VIRT_START..xen::HYPERVISOR_VIRT_END).contains(&value)
                {
                    return err(errno::EPERM);
                }
                dr[r as usize] = value;
            }
            4 | 6 => {
                if value != u64::from(value as u32) {
                    return err(errno::EINVAL);
                }
                dr[6] = (value & !DR_STATUS_RESERVED_ZERO) | DR_STATUS_RESERVED_ONE;
            }
            5 | 7 => {
                if value != u64::from(value as u32) {
                    return err(errno::EINVAL);
                }
                let v = (value & !DR_CONTROL_RESERVED_ZERO) | DR_CONTROL_RESERVED_ONE;
                if v & DR_GENERAL_DETECT != 0 {
                    return err(errno::EPERM);
                }
                if v & DR7_ACTIVE_MASK != 0 {
                    // I/O breakpoints need CR4.DE, which a PV guest here never has.
                    for i in (16..32).step_by(4) {
                        if (v >> i) & 3 == 2 {
                            return err(errno::EPERM);
                        }
                    }
                }
                dr[7] = v;
            }
            _ => return err(errno::ENODEV),
        }
        0
    }

    /// `get_debugreg(reg)`.
    pub(crate) fn get_debugreg(&mut self, reg: u64) -> i64 {
        match reg as i32 {
            r @ (0..=3 | 6 | 7) => self.vcpu.pv.dr[r as usize] as i64,
            4 => self.vcpu.pv.dr[6] as i64,
            5 => self.vcpu.pv.dr[7] as i64,
            _ => err(errno::ENODEV),
        }
    }

    /// `vm_assist(cmd, type)`.
    pub(crate) fn vm_assist(&mut self, cmd: u64, ty: u64) -> i64 {
        let ty = ty as u32 as u64;
        if ty >= 64 || PV64_VM_ASSIST_MASK & (1 << ty) == 0 {
            return err(errno::EINVAL);
        }
        match cmd as u32 as u64 {
            VMASST_CMD_ENABLE => self.vcpu.pv.vm_assist |= 1 << ty,
            VMASST_CMD_DISABLE => self.vcpu.pv.vm_assist &= !(1 << ty),
            _ => return err(errno::ENOSYS),
        }
        0
    }

    /// `physdev_op(PHYSDEVOP_set_iopl, { iopl })`.
    pub(crate) fn physdev_set_iopl(&mut self, ctx: &Ctx, arg: u64) -> i64 {
        let iopl = match self.ram.read_u32_virt(ctx.cr3, arg) {
            Ok(v) => v,
            Err(f) => return self.efault(ctx, "physdev_op", "physdev_set_iopl", f),
        };
        if iopl > 3 {
            return err(errno::EINVAL);
        }
        self.vcpu.pv.iopl = u64::from(iopl) << 12;
        0
    }
}
