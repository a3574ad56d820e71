//! Xen's PV CPUID policy, as the guest sees it through the forced-emulation prefix
//! (`ud2a; .ascii "xen"; cpuid`).

use crate::hypercall::Hypervisor;

/// `XEN_CPUID_SIGNATURE_E{B,C,D}X`: "XenVMMXenVMM".
pub const XEN_SIGNATURE: [u32; 3] = [0x566e_6558, 0x6558_4d4d, 0x4d4d_566e];
/// First Xen leaf and the number of leaves after it Xen 4.17 reports for PV.
pub const XEN_LEAF_BASE: u32 = 0x4000_0000;
pub const XEN_LEAVES: u32 = 5;

impl Hypervisor {
    /// `guest_cpuid` for this PV domain.
    pub fn pv_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        match leaf {
            XEN_LEAF_BASE => [
                XEN_LEAF_BASE + XEN_LEAVES,
                XEN_SIGNATURE[0],
                XEN_SIGNATURE[1],
                XEN_SIGNATURE[2],
            ],
            // Version: 4.17.
            0x4000_0001 => [(4 << 16) | 17, 0, 0, 0],
            // One hypercall page; its MSR at 0x40000000; MMU_PT_UPDATE_PRESERVE_AD.
            0x4000_0002 => [1, 0x4000_0000, 1, 0],
            0x4000_0003..=0x4000_0005 => [0; 4],
            0x4000_0006..=0x4fff_ffff => [0; 4],
            _ => pv_policy(leaf, subleaf, self.host_cpuid(leaf, subleaf)),
        }
    }

    /// What the CPU itself reports at CPL 3 (KVM's CPUID, as set for the vCPU).
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.cpuid.lookup(leaf, subleaf)
    }
}

/// Leaf 1 ECX bits the VMM handles itself: XSAVE (no XCR0 emulation here, so hidden with
/// everything that needs it: AVX, F16C, FMA; leaf 7's AVX2/AVX-512 are covered by the mask's
/// dependency below), OSXSAVE (reflects the guest's CR4, which never has it here) and the
/// hypervisor bit (set, as for every Xen guest).
const L1_ECX_XSAVE: u32 = 1 << 26;
const L1_ECX_OSXSAVE: u32 = 1 << 27;
const L1_ECX_AVX: u32 = 1 << 28;
const L1_ECX_F16C: u32 = 1 << 29;
const L1_ECX_FMA: u32 = 1 << 12;
const L1_ECX_HYPERVISOR: u32 = 1 << 31;
/// Leaf 7.0 EBX: AVX2 and the AVX-512 family (bits 5, 16-17, 21, 26-28, 30-31).
const L7_EBX_XSAVE_DEPS: u32 = (1 << 5) | (3 << 16) | (1 << 21) | (7 << 26) | (3 << 30);

/// Xen's default PV policy applied to what the CPU reports: the feature words keep only the
/// bits `cpuid_mask.rs` (generated from Xen's cpufeatureset.h) allows; no PSE/PGE/MTRR/VME
/// for PV, as on Xen.
pub fn pv_policy(leaf: u32, subleaf: u32, mut r: [u32; 4]) -> [u32; 4] {
    for &(l, s, reg, mask) in super::cpuid_mask::PV_DEFAULT {
        if l == leaf && (s == subleaf || !matches!(leaf, 0x7 | 0xd)) {
            r[reg] &= mask;
        }
    }
    match leaf {
        0x1 => {
            r[2] &= !(L1_ECX_XSAVE | L1_ECX_OSXSAVE | L1_ECX_AVX | L1_ECX_F16C | L1_ECX_FMA);
            r[2] |= L1_ECX_HYPERVISOR;
        }
        0x7 if subleaf == 0 => r[1] &= !L7_EBX_XSAVE_DEPS,
        0xd => r = [0; 4],
        _ => {}
    }
    r
}

/// The CPUID entries the vCPU was given (KVM_SET_CPUID2), for lookups.
#[derive(Clone, Debug, Default)]
pub struct CpuidTable {
    /// (function, index, index significant, [eax, ebx, ecx, edx]).
    entries: Vec<(u32, u32, bool, [u32; 4])>,
}

impl CpuidTable {
    pub fn from_kvm(c: &kvm_bindings::CpuId) -> Self {
        let entries = c
            .as_slice()
            .iter()
            .map(|e| {
                (
                    e.function,
                    e.index,
                    e.flags & kvm_bindings::KVM_CPUID_FLAG_SIGNIFCANT_INDEX != 0,
                    [e.eax, e.ebx, e.ecx, e.edx],
                )
            })
            .collect();
        CpuidTable { entries }
    }

    /// What the CPU answers for (leaf, subleaf): zeros for a leaf it does not have.
    pub fn lookup(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.entries
            .iter()
            .find(|(f, i, sig, _)| *f == leaf && (!*sig || *i == subleaf))
            .map(|e| e.3)
            .unwrap_or([0; 4])
    }
}
