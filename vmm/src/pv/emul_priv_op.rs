//! #GP and #UD from the guest (Xen's `pv/emul-priv-op.c`, `pv/emul-inv-op.c`).
//!
//! * #UD: the forced-emulation prefix `ud2a; .ascii "xen"` followed by `cpuid` runs CPUID
//!   with the PV policy (Xen 4.17 forces nothing else for PV).
//! * #GP(0): the instructions Xen's `validate()` lets a PV guest emulate — port I/O (judged by
//!   the virtual IOPL, on a machine with no devices: reads give all ones, writes vanish),
//!   `cli`/`sti` (accepted and ignored when the virtual IOPL allows, as Xen does), and in
//!   guest kernel mode (which Xen treats as ring 0) `mov` to/from CR0/2/3/4 and DR0-7,
//!   `rdmsr`/`wrmsr` of the MSRs Xen serves, `clts`, `wbinvd`, `rdtsc`, `cpuid`, `xsetbv`
//!   (validated in `xstate.rs`; #UD without the guest's CR4.OSXSAVE, as x86_emulate gives).
//!   Anything else is left to the caller, which bounces the #GP to the guest.
//!
//! Instructions are decoded with iced-x86.

use super::flags;
use super::traps::{DomainCrash, GuestEvent, X86_EXC_GP, X86_EXC_UD};
use super::xstate;
use crate::hypercall::Hypervisor;
use crate::tlb::Flush;
use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use pagetable_validator::Mfn;

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

const CR0_TS: u64 = 1 << 3;

/// `GUEST_MC_BANK_NUM`: the machine-check banks Xen's vMCE gives a guest.
const VMCE_BANKS: u64 = 2;

pub mod msr {
    pub const TSC: u32 = 0x10;
    pub const APIC_BASE: u32 = 0x1b;
    pub const UCODE_REV: u32 = 0x8b;
    pub const MISC_ENABLE: u32 = 0x1a0;
    pub const PAT: u32 = 0x277;
    pub const PERF_CAPABILITIES: u32 = 0x345;
    pub const EFER: u32 = 0xc000_0080;
    pub const FS_BASE: u32 = 0xc000_0100;
    pub const GS_BASE: u32 = 0xc000_0101;
    pub const SHADOW_GS_BASE: u32 = 0xc000_0102;
    pub const MCG_CAP: u32 = 0x179;
    pub const MCG_STATUS: u32 = 0x17a;
    pub const MCG_CTL: u32 = 0x17b;
    pub const MC0_CTL: u32 = 0x400;
    /// `XEN_MSR_PAT`: the PAT Xen runs PV guests with.
    pub const XEN_PAT: u64 = 0x0005_0100_0704_0406;
    /// `guest_misc_enable(0)`: BTS/PEBS unavailable, xTPR disabled.
    pub const MISC_ENABLE_VALUE: u64 = (1 << 11) | (1 << 12) | (1 << 23);
    /// `APIC_BASE_ENABLE | APIC_DEFAULT_PHYS_BASE` (| BSP for vCPU 0).
    pub const APIC_BASE_VALUE: u64 = (1 << 11) | 0xfee0_0000 | (1 << 8);
}

/// `EFER_KNOWN_MASK` bits a 64-bit PV guest sees (SCE, LME, LMA, NXE), SVME hidden.
const EFER_GUEST_MASK: u64 = (1 << 0) | (1 << 8) | (1 << 10) | (1 << 11);

fn host_tsc() -> u64 {
    // SAFETY: `rdtsc` reads the time-stamp counter; it has no memory effects and is
    // available on every x86_64 CPU this VMM runs on.
    unsafe { core::arch::x86_64::_rdtsc() }
}

impl Hypervisor {
    /// #UD: `emulate_forced_invalid_op` (FEP + CPUID only, as Xen 4.17 for PV).
    pub fn emulate_invalid_op(&mut self) -> Result<Emulated, DomainCrash> {
        let rip = self.vcpu.cpu.regs.rip;
        let cr3 = self.vcpu.cpu.sregs.cr3;
        let mut b = [0u8; 7];
        if self.ram.read_virt(cr3, rip, &mut b).is_err() || b[..5] != FEP || b[5..] != [0x0f, 0xa2]
        {
            return Ok(Emulated::No);
        }
        self.emulate_cpuid();
        let regs = self.vcpu.cpu.regs_mut();
        regs.rip = rip + 7;
        regs.rflags &= !flags::RF;
        self.stats.emulated += 1;
        Ok(Emulated::Yes)
    }

    fn emulate_cpuid(&mut self) {
        let r = self.vcpu.cpu.regs;
        let [a, b, c, d] = self.pv_cpuid(r.rax as u32, r.rcx as u32);
        let regs = self.vcpu.cpu.regs_mut();
        regs.rax = u64::from(a);
        regs.rbx = u64::from(b);
        regs.rcx = u64::from(c);
        regs.rdx = u64::from(d);
    }

    /// The instruction at the guest's rip, as far as it can be read.
    pub(crate) fn fetch_insn(&self) -> Option<Instruction> {
        let rip = self.vcpu.cpu.regs.rip;
        let cr3 = self.vcpu.cpu.sregs.cr3;
        let mut b = [0u8; 15];
        let mut n = 0;
        while n < b.len() {
            if self
                .ram
                .read_virt(cr3, rip.wrapping_add(n as u64), &mut b[n..n + 1])
                .is_err()
            {
                break;
            }
            n += 1;
        }
        let mut d = Decoder::with_ip(64, &b[..n], rip, DecoderOptions::NONE);
        let i = d.decode();
        (!i.is_invalid()).then_some(i)
    }

    /// `iopl_ok`: the virtual IOPL against the guest's virtual CPL (kernel 1, or 0 with
    /// `architectural_iopl`; user 3).
    fn iopl_ok(&self) -> bool {
        let pv = &self.vcpu.pv;
        let arch = pv.vm_assist
            & (1 << pagetable_validator::abi::vmasst::VMASST_TYPE_ARCHITECTURAL_IOPL)
            != 0;
        let cpl: u64 = match (pv.kernel_mode, arch) {
            (true, true) => 0,
            (true, false) => 1,
            (false, _) => 3,
        };
        cpl << 12 <= pv.iopl
    }

    /// #GP(0): `pv_emulate_privileged_op`.
    pub fn emulate_privileged_op(&mut self) -> Result<Emulated, DomainCrash> {
        let Some(i) = self.fetch_insn() else {
            return Ok(Emulated::No);
        };
        let kernel = self.vcpu.pv.kernel_mode;
        let done = match i.mnemonic() {
            Mnemonic::Cli | Mnemonic::Sti => self.iopl_ok(),
            Mnemonic::In | Mnemonic::Out => self.emulate_io(&i),
            Mnemonic::Mov if kernel => self.emulate_mov_cr_dr(&i),
            Mnemonic::Rdmsr if kernel => self.emulate_rdmsr(),
            Mnemonic::Wrmsr if kernel => self.emulate_wrmsr(),
            Mnemonic::Clts if kernel => {
                self.vcpu.pv.ctrlreg0_ts = false;
                self.vcpu.cpu.sregs_mut().cr0 &= !CR0_TS;
                true
            }
            Mnemonic::Wbinvd if kernel => true,
            Mnemonic::Rdtsc => {
                let t = host_tsc();
                let regs = self.vcpu.cpu.regs_mut();
                regs.rax = t & 0xffff_ffff;
                regs.rdx = t >> 32;
                true
            }
            Mnemonic::Cpuid => {
                self.emulate_cpuid();
                true
            }
            Mnemonic::Xsetbv if kernel => {
                if self.vcpu.pv.ctrlreg4 & xstate::CR4_OSXSAVE == 0 {
                    self.inject_event(GuestEvent::Exception {
                        vector: X86_EXC_UD,
                        error_code: None,
                        cr2: None,
                    })?;
                    self.stats.emulated += 1;
                    return Ok(Emulated::Yes);
                }
                let r = self.vcpu.cpu.regs;
                let value = (r.rdx << 32) | (r.rax & 0xffff_ffff);
                match self.xsetbv(r.rcx as u32, value) {
                    Ok(()) => true,
                    Err(e) => {
                        log::info!("xsetbv: {e:?} -> #GP");
                        false
                    }
                }
            }
            _ => false,
        };
        if !done {
            return Ok(Emulated::No);
        }
        self.stats.emulated += 1;
        if self.vcpu.cpu.regs.rip == i.ip() {
            self.vcpu.cpu.regs_mut().rip = i.next_ip();
        }
        Ok(Emulated::Yes)
    }

    /// `in`/`out` with an immediate or %dx port, when the virtual IOPL allows (an I/O bitmap
    /// of the guest's, `PHYSDEVOP_set_iobitmap`, is not supported: no access beyond IOPL).
    fn emulate_io(&mut self, i: &Instruction) -> bool {
        if !self.iopl_ok() {
            return false;
        }
        let size = match i.code() {
            Code::In_AL_imm8 | Code::In_AL_DX | Code::Out_imm8_AL | Code::Out_DX_AL => 1,
            Code::In_AX_imm8 | Code::In_AX_DX | Code::Out_imm8_AX | Code::Out_DX_AX => 2,
            _ => 4,
        };
        if i.mnemonic() == Mnemonic::In {
            // No devices: reads float high (Xen's guest_io_read for unowned ports).
            let ones = if size == 4 {
                0xffff_ffff
            } else {
                (1u64 << (size * 8)) - 1
            };
            let regs = self.vcpu.cpu.regs_mut();
            regs.rax = if size == 4 {
                ones
            } else {
                (regs.rax & !ones) | ones
            };
        }
        true
    }

    pub(crate) fn reg_value(&self, r: Register) -> Option<u64> {
        let g = &self.vcpu.cpu.regs;
        Some(match r.full_register() {
            Register::RAX => g.rax,
            Register::RBX => g.rbx,
            Register::RCX => g.rcx,
            Register::RDX => g.rdx,
            Register::RSI => g.rsi,
            Register::RDI => g.rdi,
            Register::RBP => g.rbp,
            Register::RSP => g.rsp,
            Register::R8 => g.r8,
            Register::R9 => g.r9,
            Register::R10 => g.r10,
            Register::R11 => g.r11,
            Register::R12 => g.r12,
            Register::R13 => g.r13,
            Register::R14 => g.r14,
            Register::R15 => g.r15,
            _ => return None,
        })
    }

    pub(crate) fn set_reg(&mut self, r: Register, v: u64) -> bool {
        let g = self.vcpu.cpu.regs_mut();
        let slot = match r.full_register() {
            Register::RAX => &mut g.rax,
            Register::RBX => &mut g.rbx,
            Register::RCX => &mut g.rcx,
            Register::RDX => &mut g.rdx,
            Register::RSI => &mut g.rsi,
            Register::RDI => &mut g.rdi,
            Register::RBP => &mut g.rbp,
            Register::RSP => &mut g.rsp,
            Register::R8 => &mut g.r8,
            Register::R9 => &mut g.r9,
            Register::R10 => &mut g.r10,
            Register::R11 => &mut g.r11,
            Register::R12 => &mut g.r12,
            Register::R13 => &mut g.r13,
            Register::R14 => &mut g.r14,
            Register::R15 => &mut g.r15,
            _ => return false,
        };
        *slot = v;
        true
    }

    /// `mov` to/from a control or debug register (`read_cr`/`write_cr`, `read_dr`/`write_dr`).
    fn emulate_mov_cr_dr(&mut self, i: &Instruction) -> bool {
        if i.op_count() != 2 || i.op0_kind() != OpKind::Register || i.op1_kind() != OpKind::Register
        {
            return false;
        }
        let (dst, src) = (i.op0_register(), i.op1_register());
        if src.is_cr() {
            let v = match src {
                Register::CR0 => {
                    let ts = if self.vcpu.pv.ctrlreg0_ts { CR0_TS } else { 0 };
                    (self.vcpu.cpu.sregs.cr0 & !CR0_TS) | ts
                }
                Register::CR2 => self.vcpu.cpu.sregs.cr2,
                Register::CR3 => self.validator.current_base().map_or(0, Mfn::maddr),
                Register::CR4 => self.vcpu.pv.ctrlreg4,
                _ => return false,
            };
            return self.set_reg(dst, v);
        }
        if dst.is_cr() {
            let Some(v) = self.reg_value(src) else {
                return false;
            };
            return match dst {
                Register::CR0 => {
                    if (v ^ self.vcpu.cpu.sregs.cr0) & !CR0_TS != 0 {
                        log::info!("Attempt to change unmodifiable CR0 flags");
                        return false;
                    }
                    self.fpu_taskswitch(u64::from(v & CR0_TS != 0));
                    true
                }
                Register::CR2 => {
                    self.vcpu.cpu.sregs_mut().cr2 = v;
                    true
                }
                Register::CR3 => self.new_guest_cr3(v >> 12),
                Register::CR4 => {
                    self.vcpu.pv.ctrlreg4 = v;
                    true
                }
                _ => false,
            };
        }
        if src.is_dr() {
            let n = src.number() as u64 - Register::DR0.number() as u64;
            let v = self.get_debugreg(n);
            return v >= 0 && self.set_reg(dst, v as u64);
        }
        if dst.is_dr() {
            let n = dst.number() as u64 - Register::DR0.number() as u64;
            let Some(v) = self.reg_value(src) else {
                return false;
            };
            return self.set_debugreg(n, v) == 0;
        }
        false
    }

    /// `new_guest_cr3` from an emulated `mov %reg, %cr3`: like MMUEXT_NEW_BASEPTR.
    fn new_guest_cr3(&mut self, mfn: u64) -> bool {
        let r = self.validator.new_baseptr(&mut self.ram, Mfn(mfn));
        let events = self.validator.drain_events();
        if let Some(m) = &mut self.frame_map {
            m.observe(&self.validator, &self.ram, &events);
        }
        let rip = self.vcpu.cpu.regs.rip;
        self.log.validator_events(events, "mov_cr3", rip);
        if r.is_err() {
            return false;
        }
        self.stats.baseptr_switches += 1;
        self.fill_ro_mpt(mfn);
        self.vcpu.cpu.sregs_mut().cr3 = mfn << 12;
        self.pending_flush = self.pending_flush.add(Flush::Full);
        true
    }

    /// `read_msr`: the MSRs Xen serves a PV guest; anything else is #GP.
    fn emulate_rdmsr(&mut self) -> bool {
        let idx = self.vcpu.cpu.regs.rcx as u32;
        let s = &self.vcpu.cpu.sregs;
        let v = match idx {
            msr::APIC_BASE => msr::APIC_BASE_VALUE,
            msr::FS_BASE => s.fs.base,
            msr::GS_BASE => s.gs.base,
            msr::SHADOW_GS_BASE => {
                if self.vcpu.pv.kernel_mode {
                    self.vcpu.pv.gs_base_other
                } else {
                    s.gs.base
                }
            }
            msr::TSC => host_tsc(),
            msr::EFER => s.efer & EFER_GUEST_MASK,
            msr::PAT => msr::XEN_PAT,
            msr::MISC_ENABLE => msr::MISC_ENABLE_VALUE,
            msr::PERF_CAPABILITIES | msr::UCODE_REV => 0,
            _ => match self.vmce_rdmsr(idx) {
                Some(v) => v,
                None => return self.msr_gp(),
            },
        };
        let regs = self.vcpu.cpu.regs_mut();
        regs.rax = v & 0xffff_ffff;
        regs.rdx = v >> 32;
        true
    }

    /// `write_msr`: segment bases; writes that leave EFER, PAT or MISC_ENABLE unchanged are
    /// accepted and dropped; anything else is #GP.
    fn emulate_wrmsr(&mut self) -> bool {
        let r = self.vcpu.cpu.regs;
        let idx = r.rcx as u32;
        let v = (r.rdx << 32) | (r.rax & 0xffff_ffff);
        let canonical = pagetable_validator::pte::is_canonical(v);
        match idx {
            msr::FS_BASE if canonical => self.vcpu.cpu.sregs_mut().fs.base = v,
            msr::GS_BASE if canonical => self.vcpu.cpu.sregs_mut().gs.base = v,
            msr::SHADOW_GS_BASE if canonical => {
                if self.vcpu.pv.kernel_mode {
                    self.vcpu.pv.gs_base_other = v;
                } else {
                    self.vcpu.cpu.sregs_mut().gs.base = v;
                }
            }
            msr::EFER if v == self.vcpu.cpu.sregs.efer & EFER_GUEST_MASK => {}
            msr::PAT if v == msr::XEN_PAT => {}
            msr::MISC_ENABLE if v == msr::MISC_ENABLE_VALUE => {}
            _ if self.vmce_wrmsr(idx) => {}
            _ => return self.msr_gp(),
        }
        true
    }

    /// A read of the read-only M2P that this host refused: on kvm-pvm machines L4 slot 256
    /// (where Xen's ABI puts `machine_to_phys_mapping`) belongs to the host, and guest accesses
    /// there raise #PF (not-present or reserved-bit) even though our tables map it. Emulates the
    /// load (`mov`, `movzx`, `movsx(d)` into a register) from the M2P itself; anything else is
    /// left to the caller (a write gets Xen's #PF on a read-only page).
    pub fn emulate_ro_mpt_read(&mut self, cr2: u64) -> Emulated {
        use pagetable_validator::abi::x86::MACH2PHYS_VIRT_START;
        let Some(i) = self.fetch_insn() else {
            log::debug!("ro_mpt read at {cr2:#x}: instruction not readable");
            return Emulated::No;
        };
        log::debug!(
            "ro_mpt read at {cr2:#x}: {:?} {:?} size {}",
            i.mnemonic(),
            i.op0_register(),
            i.memory_size().size()
        );
        let load = matches!(
            i.mnemonic(),
            Mnemonic::Mov | Mnemonic::Movzx | Mnemonic::Movsx | Mnemonic::Movsxd
        ) && i.op_count() == 2
            && i.op0_kind() == OpKind::Register
            && i.op1_kind() == OpKind::Memory;
        if !load {
            return Emulated::No;
        }
        let size = i.memory_size().size();
        let dst = i.op0_register();
        let off = cr2.wrapping_sub(MACH2PHYS_VIRT_START);
        let end = self.xen.m2p_entries() * 8;
        if !matches!(size, 1 | 2 | 4 | 8) || off.checked_add(size as u64).is_none_or(|e| e > end) {
            return Emulated::No;
        }
        let mut b = [0u8; 8];
        if !self
            .ram
            .read_phys(self.xen.m2p_gpa(0) + off, &mut b[..size])
        {
            return Emulated::No;
        }
        let raw = u64::from_le_bytes(b);
        let bits = size * 8;
        let v = match i.mnemonic() {
            Mnemonic::Movsx | Mnemonic::Movsxd if bits < 64 => {
                (((raw << (64 - bits)) as i64) >> (64 - bits)) as u64
            }
            _ => raw,
        };
        let Some(old) = self.reg_value(dst) else {
            return Emulated::No;
        };
        let v = match dst.size() {
            8 => v,
            4 => v & 0xffff_ffff,
            2 => (old & !0xffff) | (v & 0xffff),
            _ if dst.is_gpr8()
                && matches!(
                    dst,
                    Register::AH | Register::BH | Register::CH | Register::DH
                ) =>
            {
                return Emulated::No;
            }
            _ => (old & !0xff) | (v & 0xff),
        };
        if !self.set_reg(dst, v) {
            return Emulated::No;
        }
        self.vcpu.cpu.regs_mut().rip = i.next_ip();
        self.stats.emulated += 1;
        Emulated::Yes
    }

    /// Xen's virtual machine-check MSRs (`cpu/mcheck/vmce.c`): MCG_CAP with 2 banks (plus
    /// SER/TES/CMCI on Intel), MCG_STATUS 0, MCi_CTL all ones, the banks' STATUS/ADDR/MISC 0.
    /// No machine check is ever injected, so nothing stored needs to be kept.
    fn vmce_rdmsr(&self, idx: u32) -> Option<u64> {
        let banks = u32::try_from(VMCE_BANKS).unwrap_or(2);
        Some(match idx {
            msr::MCG_CAP => self.vmce_mcg_cap(),
            msr::MCG_STATUS | msr::MCG_CTL => 0,
            i if (msr::MC0_CTL..msr::MC0_CTL + 4 * banks).contains(&i) => {
                if (i - msr::MC0_CTL).is_multiple_of(4) {
                    u64::MAX
                } else {
                    0
                }
            }
            _ => return None,
        })
    }

    /// Writes Xen's vMCE accepts (and, with nothing injected, has no effect).
    fn vmce_wrmsr(&self, idx: u32) -> bool {
        let banks = u32::try_from(VMCE_BANKS).unwrap_or(2);
        matches!(idx, msr::MCG_STATUS | msr::MCG_CTL)
            || (msr::MC0_CTL..msr::MC0_CTL + 4 * banks).contains(&idx)
    }

    fn vmce_mcg_cap(&self) -> u64 {
        // CPUID leaf 0's vendor: "AuthenticAMD" (and Hygon) get AMD_GUEST_MCG_CAP.
        let amd = matches!(self.cpuid.lookup(0, 0)[1], 0x6874_7541 | 0x6f67_7948);
        if amd {
            VMCE_BANKS
        } else {
            (1 << 24) | (1 << 11) | (1 << 10) | VMCE_BANKS
        }
    }

    /// An MSR access Xen refuses: #GP(0) injected (the emulation itself "succeeded").
    fn msr_gp(&mut self) -> bool {
        match self.inject_event(GuestEvent::Exception {
            vector: X86_EXC_GP,
            error_code: Some(0),
            cr2: None,
        }) {
            Ok(()) => true,
            Err(_) => false,
        }
    }
}
