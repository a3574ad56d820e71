//! Extended processor state (XSAVE) for the PV kernel, as Xen's `arch/x86/xstate.c` and the
//! leaf-0xD part of `cpuid.c` give it: the PV CPUID offers XSAVE with the state components
//! its feature policy allows, the kernel enables them with `xsetbv` (privileged: emulated
//! here, validated like `handle_xsetbv`), and CPUID 0xD reports the sizes for the XCR0 the
//! kernel chose.
//!
//! Why it matters beyond conformance: guest user code runs natively and sees the CPU's own
//! CPUID, so it uses AVX whatever the PV CPUID says. A kernel told "no XSAVE" switches tasks
//! with FXSAVE, which saves no upper YMM halves and no AVX-512 registers: every process then
//! sees the others' vector state (measured: Debian's Linux lost the upper halves of a
//! process's YMM registers at every context switch, and freshly exec'd busybox processes
//! crashed in glibc's TLS set-up, whose AVX memcpy stored another process's registers).
//! On kvm-pvm hosts guest CPL-3 code even runs with the host's XCR0 (the vCPU's XCR0 is not
//! loaded), so the kernel must be offered — and enable — every component that XCR0 has.

use super::cpuid::CpuidTable;
use crate::hypercall::Hypervisor;

/// XCR0 state components (Intel SDM vol. 1, 13.1; Xen's `X86_XCR0_*`).
pub const XCR0_X87: u64 = 1 << 0;
pub const XCR0_SSE: u64 = 1 << 1;
pub const XCR0_YMM: u64 = 1 << 2;
pub const XCR0_BNDREGS: u64 = 1 << 3;
pub const XCR0_BNDCSR: u64 = 1 << 4;
pub const XCR0_OPMASK: u64 = 1 << 5;
pub const XCR0_ZMM: u64 = 1 << 6;
pub const XCR0_HI_ZMM: u64 = 1 << 7;
pub const XCR0_AVX512: u64 = XCR0_OPMASK | XCR0_ZMM | XCR0_HI_ZMM;
/// What a vCPU starts with (Xen's `XSTATE_FP_SSE`, set in `xstate_alloc_save_area`).
pub const XSTATE_FP_SSE: u64 = XCR0_X87 | XCR0_SSE;
/// The legacy FXSAVE area plus the XSAVE header: the size of an XSAVE area with only x87/SSE.
const XSAVE_HDR_END: u32 = 512 + 64;

/// Leaf 1 ECX: XSAVE, OSXSAVE, AVX, and AVX with what needs it (F16C, FMA).
pub const L1_ECX_XSAVE: u32 = 1 << 26;
pub const L1_ECX_OSXSAVE: u32 = 1 << 27;
pub const L1_ECX_AVX: u32 = 1 << 28;
pub const L1_ECX_AVX_DEPS: u32 = L1_ECX_AVX | (1 << 29) | (1 << 12);
/// Leaf 7.0 EBX: AVX2 (needs YMM state) and the AVX-512 family (bits 16-17, 21, 26-28,
/// 30-31: need the three AVX-512 components).
pub const L7_EBX_AVX2: u32 = 1 << 5;
pub const L7_EBX_AVX512F: u32 = 1 << 16;
pub const L7_EBX_AVX512: u32 = (3 << 16) | (1 << 21) | (7 << 26) | (3 << 30);
pub use crate::arch::CR4_OSXSAVE;

/// Xen's `valid_xcr0`: the combinations the architecture allows.
pub fn valid_xcr0(x: u64) -> bool {
    if x & XCR0_X87 == 0 {
        return false;
    }
    if x & XCR0_YMM != 0 && x & XCR0_SSE == 0 {
        return false;
    }
    if x & XCR0_AVX512 != 0 && (x & XCR0_YMM == 0 || x & XCR0_AVX512 != XCR0_AVX512) {
        return false;
    }
    (x & XCR0_BNDREGS == 0) == (x & XCR0_BNDCSR == 0)
}

/// The XCR0 components the PV policy offers (Xen's `recalculate_xstate`): x87 and SSE, YMM
/// with AVX, the AVX-512 components with AVX512F — as far as the CPU's leaf 0xD has them.
/// `l1_ecx` and `l7_ebx` are the policy's feature words (after Xen's PV mask).
pub fn xcr0_max(cpu: &CpuidTable, l1_ecx: u32, l7_ebx: u32) -> u64 {
    if l1_ecx & L1_ECX_XSAVE == 0 {
        return 0;
    }
    let mut x = XSTATE_FP_SSE;
    if l1_ecx & L1_ECX_AVX != 0 {
        x |= XCR0_YMM;
        if l7_ebx & L7_EBX_AVX512F != 0 {
            x |= XCR0_AVX512;
        }
    }
    let [a, _, _, d] = cpu.lookup(0xd, 0);
    let hw = u64::from(a) | (u64::from(d) << 32);
    // A component the CPU lacks takes the features that need it along (see `feature_words`).
    let x = x & hw;
    if x & XCR0_AVX512 != XCR0_AVX512 || x & XCR0_YMM == 0 {
        x & !XCR0_AVX512
    } else {
        x
    }
}

/// The leaf 1 ECX and leaf 7.0 EBX feature words without what `max` cannot back.
pub fn feature_words(max: u64, l1_ecx: u32, l7_ebx: u32) -> (u32, u32) {
    let (mut c, mut b) = (l1_ecx, l7_ebx);
    if max == 0 {
        c &= !L1_ECX_XSAVE;
    }
    if max & XCR0_YMM == 0 {
        c &= !L1_ECX_AVX_DEPS;
        b &= !L7_EBX_AVX2;
    }
    if max & XCR0_AVX512 == 0 {
        b &= !L7_EBX_AVX512;
    }
    (c, b)
}

/// Size of a standard-format XSAVE area holding `xcr0`'s components (`xstate_uncompressed_size`).
fn uncompressed_size(cpu: &CpuidTable, xcr0: u64) -> u32 {
    (2..63)
        .filter(|i| xcr0 & (1 << i) != 0)
        .map(|i| {
            let [size, offset, _, _] = cpu.lookup(0xd, i);
            offset.saturating_add(size)
        })
        .fold(XSAVE_HDR_END, u32::max)
}

/// Size of a compacted-format area (`xstate_compressed_size`): components in order, each
/// 64-byte aligned where leaf 0xD says so.
fn compressed_size(cpu: &CpuidTable, xcr0: u64) -> u32 {
    (2..63)
        .filter(|i| xcr0 & (1 << i) != 0)
        .fold(XSAVE_HDR_END, |end, i| {
            let [size, _, flags, _] = cpu.lookup(0xd, i);
            let start = if flags & 2 != 0 {
                end.saturating_add(63) & !63
            } else {
                end
            };
            start.saturating_add(size)
        })
}

/// CPUID leaf 0xD for a PV guest offered `max` whose XCR0 is `xcr0`.
/// `sub1_eax` is subleaf 1's EAX after the PV mask (XSAVEOPT, XSAVEC, XGETBV1; never XSAVES).
pub fn leaf_0xd(cpu: &CpuidTable, subleaf: u32, max: u64, xcr0: u64, sub1_eax: u32) -> [u32; 4] {
    if max == 0 {
        return [0; 4];
    }
    match subleaf {
        0 => [
            max as u32,
            uncompressed_size(cpu, xcr0),
            uncompressed_size(cpu, max),
            (max >> 32) as u32,
        ],
        1 => {
            // No XSAVES (CPL 0 only), so no supervisor components (ECX:EDX, XSS) either.
            let eax = sub1_eax;
            let ebx = if eax & 2 != 0 {
                compressed_size(cpu, xcr0)
            } else {
                0
            };
            [eax, ebx, 0, 0]
        }
        i if i < 63 && max & (1 << i) != 0 => {
            let [size, offset, flags, _] = cpu.lookup(0xd, i);
            [size, offset, flags & 2, 0]
        }
        _ => [0; 4],
    }
}

/// Why an emulated `xsetbv` raises #GP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XsetbvFault {
    /// Only XCR0 (index 0) exists for us.
    Index(u32),
    /// A component not offered, or a combination `valid_xcr0` rejects.
    Value(u64),
}

impl Hypervisor {
    /// The XCR0 components this domain's PV CPUID offers.
    pub fn xcr0_max(&self) -> u64 {
        let c1 = super::cpuid::pv_policy(1, 0, self.cpuid.lookup(1, 0))[2];
        let b7 = super::cpuid::pv_policy(7, 0, self.cpuid.lookup(7, 0))[1];
        xcr0_max(&self.cpuid, c1, b7)
    }

    /// `handle_xsetbv` for an emulated `xsetbv` from guest kernel mode: the new XCR0 is what
    /// CPUID 0xD reports sizes for and what the vCPU runs with from its next entry.
    pub fn xsetbv(&mut self, index: u32, value: u64) -> Result<(), XsetbvFault> {
        if index != 0 {
            return Err(XsetbvFault::Index(index));
        }
        if value & !self.xcr0_max() != 0 || !valid_xcr0(value) {
            return Err(XsetbvFault::Value(value));
        }
        self.vcpu.pv.xcr0 = value;
        self.vcpu.cpu.xcr0_pending = Some(value);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
