//! Writable pagetables (Xen's `pv/ro-page-fault.c`, `ptwr_emulated_update`): with
//! `vm_assist(VMASST_TYPE_writable_pagetables)` a guest kernel may write an entry of one of
//! its pinned L1 tables directly, through the table's read-only mapping. The write faults;
//! the VMM decodes it, validates the new entry exactly like an `mmu_update` of that entry
//! (same rules, refusals, provenance and log events: it *is* one, in the validator) and
//! performs it. Linux 6.1 does this in `ptep_set_wrprotect` (fork), `ptep_get_and_clear`
//! (munmap) and `ptep_test_and_clear_young`.
//!
//! Forms emulated (what Linux emits on PTEs): `mov` (store), `xchg`, `cmpxchg`, `and`, `or`,
//! `btr`, `bts` on 1-8 bytes within one entry, `lock` or not. A refused entry, or any other
//! instruction, leaves the #PF to the guest, as Xen does.

use super::emul_priv_op::Emulated;
use super::flags;
use crate::hypercall::{Ctx, Hypervisor};
use iced_x86::{Instruction, Mnemonic, OpKind};
use pagetable_validator::abi::{mmu, MmuUpdate};
use pagetable_validator::Mfn;
use pagetable_validator::PageType;

/// RFLAGS bits an emulated ALU operation defines.
const ARITH: u64 = flags::CF | (1 << 2) | (1 << 4) | (1 << 6) | (1 << 7) | (1 << 11);
const ZF: u64 = 1 << 6;
const SF: u64 = 1 << 7;
const PF: u64 = 1 << 2;

fn logic_flags(v: u64, bits: u32) -> u64 {
    let mut f = 0;
    let m = if bits == 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    };
    if v & m == 0 {
        f |= ZF;
    }
    if (v >> (bits - 1)) & 1 != 0 {
        f |= SF;
    }
    if (v as u8).count_ones().is_multiple_of(2) {
        f |= PF;
    }
    f
}

impl Hypervisor {
    /// #PF on a present read-only page with a write: a write into a pinned L1 through its
    /// read-only mapping, if writable pagetables are on. `Yes`: validated and performed.
    pub fn ptwr_fault(&mut self, cr2: u64) -> Emulated {
        let assist = 1 << pagetable_validator::abi::vmasst::VMASST_TYPE_WRITABLE_PAGETABLES;
        if self.vcpu.pv.vm_assist & assist == 0 || !self.vcpu.pv.kernel_mode {
            return Emulated::No;
        }
        let cr3 = self.vcpu.cpu.sregs.cr3;
        // The frame behind the read-only mapping must be one of our L1 tables.
        let Ok(gpa) = self.ram.translate(cr3, cr2, false) else {
            return Emulated::No;
        };
        let l1 = gpa >> 12;
        if self.validator.page_type(Mfn(l1)) != PageType::L1 {
            return Emulated::No;
        }
        let Some(i) = self.fetch_insn() else {
            return Emulated::No;
        };
        let size = i.memory_size().size() as u64;
        let off = gpa & 7;
        if !matches!(size, 1 | 2 | 4 | 8) || off + size > 8 {
            return Emulated::No; // not within one entry
        }
        let entry_gpa = gpa & !7;
        let Some(old) = self.ram.read_u64_phys(entry_gpa) else {
            return Emulated::No;
        };
        let shift = off * 8;
        let mask = if size == 8 {
            u64::MAX
        } else {
            ((1u64 << (size * 8)) - 1) << shift
        };
        let old_part = (old & mask) >> shift;
        let Some(op) = self.ptwr_compute(&i, old_part, size as u32) else {
            return Emulated::No;
        };
        if let Some(part) = op.store {
            let new = (old & !mask) | ((part << shift) & mask);
            if new != old {
                let req = MmuUpdate {
                    ptr: entry_gpa | mmu::NORMAL_PT_UPDATE,
                    val: new,
                };
                let mut ctx = Ctx::new(cr3, self.vcpu.cpu.regs.rip);
                let r = self.validator.mmu_update(&mut self.ram, req);
                if self.xen_result(&mut ctx, r, "ptwr") != 0 {
                    return Emulated::No;
                }
                self.pending_flush = self.pending_flush.add(ctx.flush);
                self.stats.pte_updates += 1;
                self.stats.ptwr += 1;
            }
        }
        if let Some((reg, v)) = op.reg {
            let old = self.reg_value(reg).unwrap_or(0);
            let v = match size {
                8 => v,
                4 => v & 0xffff_ffff,
                2 => (old & !0xffff) | (v & 0xffff),
                _ => (old & !0xff) | (v & 0xff),
            };
            self.set_reg(reg, v);
        }
        let regs = self.vcpu.cpu.regs_mut();
        if let Some(f) = op.flags {
            regs.rflags = (regs.rflags & !ARITH) | f;
        }
        regs.rip = i.next_ip();
        Emulated::Yes
    }

    /// What instruction `i` does to the `bits`-byte memory value `m`.
    fn ptwr_compute(&self, i: &Instruction, m: u64, bytes: u32) -> Option<PtwrOp> {
        let bits = bytes * 8;
        let trunc = |v: u64| if bits == 64 { v } else { v & ((1 << bits) - 1) };
        if i.op_count() != 2 || i.op0_kind() != OpKind::Memory {
            return None;
        }
        let src = match i.op1_kind() {
            OpKind::Register => self.reg_value(i.op1_register())?,
            OpKind::Immediate8 | OpKind::Immediate8to64 | OpKind::Immediate8to32 => i.immediate(1),
            OpKind::Immediate16 | OpKind::Immediate32 | OpKind::Immediate32to64 => i.immediate(1),
            _ => return None,
        };
        let src = trunc(src);
        Some(match i.mnemonic() {
            Mnemonic::Mov => PtwrOp::store(src),
            Mnemonic::Xchg => PtwrOp {
                store: Some(src),
                reg: Some((i.op1_register(), m)),
                flags: None,
            },
            Mnemonic::Cmpxchg => {
                let rax = trunc(self.vcpu.cpu.regs.rax);
                let diff = rax.wrapping_sub(m);
                let mut f = logic_flags(diff, bits);
                if rax < m {
                    f |= flags::CF;
                }
                if rax == m {
                    PtwrOp {
                        store: Some(src),
                        reg: None,
                        flags: Some(f),
                    }
                } else {
                    // Failure: the accumulator receives the memory value.
                    PtwrOp {
                        store: None,
                        reg: Some((iced_x86::Register::RAX, m)),
                        flags: Some(f),
                    }
                }
            }
            Mnemonic::And => {
                let v = m & src;
                PtwrOp::alu(v, logic_flags(v, bits))
            }
            Mnemonic::Or => {
                let v = m | src;
                PtwrOp::alu(v, logic_flags(v, bits))
            }
            Mnemonic::Btr | Mnemonic::Bts => {
                let bit = src % u64::from(bits);
                let was = (m >> bit) & 1;
                let v = if i.mnemonic() == Mnemonic::Btr {
                    m & !(1 << bit)
                } else {
                    m | (1 << bit)
                };
                let cf = if was != 0 { flags::CF } else { 0 };
                PtwrOp::alu(v, (self.vcpu.cpu.regs.rflags & ARITH & !flags::CF) | cf)
            }
            _ => return None,
        })
    }
}

/// The effect of one emulated instruction on the entry, a register and the flags.
struct PtwrOp {
    store: Option<u64>,
    /// A register that receives the old memory value (xchg; cmpxchg failure: rax).
    reg: Option<(iced_x86::Register, u64)>,
    flags: Option<u64>,
}

impl PtwrOp {
    fn store(v: u64) -> Self {
        PtwrOp {
            store: Some(v),
            reg: None,
            flags: None,
        }
    }
    fn alu(v: u64, f: u64) -> Self {
        PtwrOp {
            store: Some(v),
            reg: None,
            flags: Some(f),
        }
    }
}

/// Whether a guest page-fault error code is a write to a present page (ptwr's case).
pub fn is_ptwr_candidate(ec: u32) -> bool {
    ec & 3 == 3 && ec & (1 << 3) == 0
}
