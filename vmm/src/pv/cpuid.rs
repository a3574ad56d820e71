//! Xen's PV CPUID policy, as the guest sees it through the forced-emulation prefix
//! (`ud2a; .ascii "xen"; cpuid`).

use super::xstate;
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
            0x1 | 0x7 | 0xd => self.xstate_leaf(leaf, subleaf),
            _ => pv_policy(leaf, subleaf, self.host_cpuid(leaf, subleaf)),
        }
    }

    /// The leaves that depend on the XSAVE state components offered (see `xstate.rs`): the
    /// feature bits that need a component the CPU lacks go, OSXSAVE follows the guest's CR4,
    /// and leaf 0xD reports sizes for the XCR0 the guest set.
    fn xstate_leaf(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let mut r = pv_policy(leaf, subleaf, self.host_cpuid(leaf, subleaf));
        let max = self.xcr0_max();
        match leaf {
            0x1 => {
                r[2] = xstate::feature_words(max, r[2], 0).0;
                // Xen's "non-architectural" PV OSXSAVE (cpuid.c): the guest kernel sees Xen's
                // own CR4.OSXSAVE (always set here) before it sets its own, and Linux relies
                // on it (`xen_check_xsave` wants XSAVE and OSXSAVE, else it uses FXSAVE).
                let xsave = r[2] & xstate::L1_ECX_XSAVE != 0;
                if self.vcpu.pv.ctrlreg4 & xstate::CR4_OSXSAVE != 0
                    || (xsave && self.vcpu.pv.kernel_mode)
                {
                    r[2] |= xstate::L1_ECX_OSXSAVE;
                }
                r
            }
            0x7 if subleaf == 0 => {
                let l1 = pv_policy(1, 0, self.host_cpuid(1, 0))[2];
                r[1] = xstate::feature_words(max, l1, r[1]).1;
                r
            }
            0xd => {
                let sub1 = pv_policy(0xd, 1, self.host_cpuid(0xd, 1))[0];
                xstate::leaf_0xd(&self.cpuid, subleaf, max, self.vcpu.pv.xcr0, sub1)
            }
            _ => r,
        }
    }

    /// What the CPU itself reports at CPL 3 (KVM's CPUID as set for the vCPU, plus the vector
    /// features CPL-3 code can use natively, see [`CpuidTable::with_native_vector_features`]).
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        self.cpuid.lookup(leaf, subleaf)
    }
}

/// Leaf 1 ECX: OSXSAVE reflects the guest's CR4 (set by `xstate_leaf`); the hypervisor bit
/// is set, as for every Xen guest.
const L1_ECX_HYPERVISOR: u32 = 1 << 31;

/// Xen's default PV policy applied to what the CPU reports: the feature words keep only the
/// bits `cpuid_mask.rs` (generated from Xen's cpufeatureset.h) allows; no PSE/PGE/MTRR/VME
/// for PV, as on Xen.
pub fn pv_policy(leaf: u32, subleaf: u32, mut r: [u32; 4]) -> [u32; 4] {
    for &(l, s, reg, mask) in super::cpuid_mask::PV_DEFAULT {
        if l == leaf && (s == subleaf || !matches!(leaf, 0x7 | 0xd)) {
            r[reg] &= mask;
        }
    }
    if leaf == 0x1 {
        r[2] = (r[2] & !xstate::L1_ECX_OSXSAVE) | L1_ECX_HYPERVISOR;
    }
    r
}

/// The CPUID entries the vCPU was given (KVM_SET_CPUID2), for lookups.
#[derive(Clone, Debug, Default)]
pub struct CpuidTable {
    /// (function, index, index significant, [eax, ebx, ecx, edx]).
    entries: Vec<(u32, u32, bool, [u32; 4])>,
    /// Vector-extension bits of leaf 1 ECX and leaf 7.0 EBX that guest CPL-3 code has even
    /// where KVM's table lacks them.
    native_vector: [u32; 2],
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
        CpuidTable {
            entries,
            native_vector: [0; 2],
        }
    }

    /// What the CPU answers for (leaf, subleaf): zeros for a leaf it does not have.
    pub fn lookup(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let mut r = self
            .entries
            .iter()
            .find(|(f, i, sig, _)| *f == leaf && (!*sig || *i == subleaf))
            .map(|e| e.3)
            .unwrap_or([0; 4]);
        match (leaf, subleaf) {
            (1, _) => r[2] |= self.native_vector[0],
            (7, 0) => r[1] |= self.native_vector[1],
            _ => {}
        }
        r
    }

    /// Adds the vector extensions (XSAVE, AVX, F16C, FMA; AVX2, AVX-512) of the CPU's own
    /// leaf 1 ECX and leaf 7.0 EBX. Where the host does not intercept CPUID at CPL 3 (kvm-pvm:
    /// its table here has no XSAVE or AVX, yet guest user code reads the CPU's and runs AVX-512
    /// with the host's XCR0), the kernel must be told about the state user code will use, or it
    /// switches tasks without saving it (`xstate.rs`). On hosts whose KVM intercepts CPUID the
    /// table has these bits already.
    pub fn with_native_vector_features(mut self, l1_ecx: u32, l7_ebx: u32) -> Self {
        use super::xstate::{L1_ECX_AVX_DEPS, L1_ECX_XSAVE, L7_EBX_AVX2, L7_EBX_AVX512};
        self.native_vector = [
            l1_ecx & (L1_ECX_XSAVE | L1_ECX_AVX_DEPS),
            l7_ebx & (L7_EBX_AVX2 | L7_EBX_AVX512),
        ];
        self
    }
}
