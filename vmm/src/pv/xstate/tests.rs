//! xstate.rs without KVM: Xen's XCR0 rules, the offered components, CPUID 0xD's sizes, and
//! `xsetbv` through the Hypervisor. The CPU is this project's CI host as KVM reports it (leaf
//! 0xD: x87, SSE, AVX, the three AVX-512 components; their sizes and offsets), with the
//! vector features its CPL-3 code has natively.

use super::*;
use crate::pv::cpuid::CpuidTable;
use kvm_bindings::{kvm_cpuid_entry2, CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

fn entry(function: u32, index: u32, r: [u32; 4]) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function,
        index,
        flags: if function == 0xd || function == 7 {
            KVM_CPUID_FLAG_SIGNIFCANT_INDEX
        } else {
            0
        },
        eax: r[0],
        ebx: r[1],
        ecx: r[2],
        edx: r[3],
        ..Default::default()
    }
}

/// KVM's table on the CI host (kvm-pvm: no XSAVE or AVX in leaf 1/7, all of them in 0xD).
fn host_table() -> CpuidTable {
    let e = [
        entry(1, 0, [0xb00f21, 0x20800, 0x8120_2000, 0x78b_fbff]),
        entry(7, 0, [1, 0x180_0002, 0x104, 0x2000_0000]),
        entry(0xd, 0, [0xe7, 0x980, 0x980, 0]),
        entry(0xd, 1, [0, 0, 0, 0]),
        entry(0xd, 2, [0x100, 0x240, 0, 0]),
        entry(0xd, 5, [0x40, 0x340, 0, 0]),
        entry(0xd, 6, [0x200, 0x380, 0, 0]),
        entry(0xd, 7, [0x400, 0x580, 0, 0]),
    ];
    CpuidTable::from_kvm(&CpuId::from_entries(&e).unwrap())
}

/// The same with what the host's CPL-3 code sees natively: XSAVE, AVX, AVX2, AVX-512F.
fn cpu() -> CpuidTable {
    host_table()
        .with_native_vector_features(L1_ECX_XSAVE | L1_ECX_AVX, L7_EBX_AVX2 | L7_EBX_AVX512F)
}

#[test]
fn valid_xcr0_follows_xens_rules() {
    for ok in [0x1, 0x3, 0x7, 0xe7, 0x1f] {
        assert!(valid_xcr0(ok), "{ok:#x}");
    }
    for bad in [
        0x0,  // no x87
        0x2,  // no x87
        0x5,  // YMM without SSE
        0x23, // OPMASK without YMM
        0x67, // OPMASK + ZMM without HI_ZMM
        0xb,  // BNDREGS without BNDCSR
    ] {
        assert!(!valid_xcr0(bad), "{bad:#x}");
    }
}

#[test]
fn offered_components_follow_the_features_and_the_cpu() {
    let c = cpu();
    let l1 = c.lookup(1, 0)[2];
    let l7 = c.lookup(7, 0)[1];
    assert_eq!(xcr0_max(&c, l1, l7), 0xe7);
    assert_eq!(xcr0_max(&c, l1, 0), 0x7, "no AVX512F: no AVX-512 state");
    assert_eq!(xcr0_max(&c, l1 & !L1_ECX_AVX, l7), 0x3, "no AVX: SSE only");
    assert_eq!(xcr0_max(&c, 0, l7), 0, "no XSAVE: nothing");
    // KVM's table alone (no native features): what kvm-pvm's table says, XSAVE-less.
    let h = host_table();
    assert_eq!(xcr0_max(&h, h.lookup(1, 0)[2], h.lookup(7, 0)[1]), 0);
    // Features without the components they need are withdrawn.
    assert_eq!(
        feature_words(0x3, 0xffff_ffff, 0xffff_ffff).0 & L1_ECX_AVX_DEPS,
        0
    );
    assert_eq!(feature_words(0x7, 0, 0xffff_ffff).1 & L7_EBX_AVX512, 0);
    assert_ne!(feature_words(0x7, 0, 0xffff_ffff).1 & L7_EBX_AVX2, 0);
}

#[test]
fn leaf_0xd_reports_sizes_for_the_guests_xcr0() {
    let c = cpu();
    // Linux on the VMM printed these: 832 bytes for 0x7, 2432 for 0xe7.
    assert_eq!(leaf_0xd(&c, 0, 0xe7, 0x3, 0), [0xe7, 576, 2432, 0]);
    assert_eq!(leaf_0xd(&c, 0, 0xe7, 0x7, 0)[1], 832);
    assert_eq!(leaf_0xd(&c, 0, 0xe7, 0xe7, 0)[1], 2432);
    assert_eq!(leaf_0xd(&c, 2, 0xe7, 0x3, 0), [0x100, 0x240, 0, 0]);
    assert_eq!(
        leaf_0xd(&c, 7, 0x7, 0x7, 0),
        [0; 4],
        "a component not offered"
    );
    assert_eq!(leaf_0xd(&c, 1, 0xe7, 0xe7, 0), [0; 4]);
    // With XSAVEC the compacted size for XCR0: 576 + 256 + 64 + 512 + 1024.
    assert_eq!(leaf_0xd(&c, 1, 0xe7, 0xe7, 2), [2, 2432, 0, 0]);
    assert_eq!(leaf_0xd(&c, 0, 0, 0x3, 0), [0; 4], "no XSAVE offered");
}

#[test]
fn xsetbv_is_validated_and_loads_at_the_next_entry() {
    let mut hv = crate::hypercall::testenv::hypervisor();
    hv.cpuid = cpu();
    assert_eq!(hv.xcr0_max(), 0xe7);
    assert_eq!(hv.xsetbv(1, 0x3), Err(XsetbvFault::Index(1)));
    assert_eq!(hv.xsetbv(0, 0x5), Err(XsetbvFault::Value(0x5)));
    assert_eq!(
        hv.xsetbv(0, 0x2e7),
        Err(XsetbvFault::Value(0x2e7)),
        "PKRU not offered"
    );
    assert_eq!(
        hv.vcpu.cpu.xcr0_pending, None,
        "a refused value changes nothing"
    );
    assert_eq!(hv.vcpu.pv.xcr0, XSTATE_FP_SSE);
    // The guest kernel sees XSAVE with OSXSAVE before setting its CR4 (Xen's leak), and
    // CPUID 0xD follows its XCR0.
    assert!(hv.vcpu.pv.kernel_mode);
    let l1 = hv.pv_cpuid(1, 0)[2];
    assert_eq!(
        l1 & (L1_ECX_XSAVE | L1_ECX_OSXSAVE),
        L1_ECX_XSAVE | L1_ECX_OSXSAVE
    );
    assert_eq!(hv.pv_cpuid(0xd, 0)[1], 576);
    assert_eq!(hv.xsetbv(0, 0xe7), Ok(()));
    assert_eq!(hv.vcpu.cpu.xcr0_pending, Some(0xe7));
    assert_eq!(hv.pv_cpuid(0xd, 0)[1], 2432);
    assert_ne!(hv.pv_cpuid(7, 0)[1] & L7_EBX_AVX512F, 0);
    // Guest user mode sees OSXSAVE only once the kernel set CR4.OSXSAVE.
    hv.vcpu.pv.kernel_mode = false;
    assert_eq!(hv.pv_cpuid(1, 0)[2] & L1_ECX_OSXSAVE, 0);
    hv.vcpu.pv.ctrlreg4 |= CR4_OSXSAVE;
    assert_ne!(hv.pv_cpuid(1, 0)[2] & L1_ECX_OSXSAVE, 0);
}
