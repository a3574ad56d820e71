//! Scenario `xen-rules` (Xen's edge rules for 64-bit PV page tables): our VMM must print
//! exactly what real Xen 4.17 printed, and real Xen must still print it.
//!
//! `XEN_TRANSCRIPT` is real Xen's output, recorded from Xen 4.17.7 (Debian release build) and
//! identical on the 4.17.5 debug build (QEMU TCG, dom0_mem=64M). These are Xen facts, not
//! values derived from our validator: among them the flags Xen adds to accepted entries
//! (`adds 0x10000000000004` = `_PAGE_USER | _PAGE_GUEST_KERNEL` on kernel L1 entries, `0x100`
//! = `_PAGE_GLOBAL` on user L1 entries, `0x4` on L2/L3, `0x24` = `USER | ACCESSED` on L4),
//! PRESERVE_AD keeping A/D (`0x64` part), dom0's cache attributes and AVAIL_HIGH accepted,
//! PSE refused in L2 (-22), read-only linear entries accepted and read-write ones refused
//! (-22), an L4 pinned although its hypervisor slots hold junk (rc 0, slot 256 empty
//! afterwards) and `mmu_update` into a hypervisor slot refused (-22).

mod vmm_support;

use vmm_support::*;
use xenkvm_tests::guest::guest_elf;
use xenkvm_tests::real_xen::{qemu_or_skip, run_on_xen, XenStatus};
use xenkvm_tests::transcript::{diff, Transcript};

const XEN_TRANSCRIPT: &str = "\
T01 pin_l1 (kernel RO entry 0, user RO entry 1) rc=0
T02 L1[0] kernel entry read back: adds 0x10000000000004 rc=0
T03 L1[1] user entry read back: adds 0x100 rc=0
T04 mmu_update L1[2] = kernel RO rc=0
T05 L1[2] read back: adds 0x10000000000004 rc=0
T06 mmu_update L1[3] = kernel RO + A/D rc=0
T07 mmu_update(preserve_ad) L1[3] = kernel RO without A/D rc=0
T08 L1[3] read back: adds 0x10000000000064 rc=0
T09 mmu_update L1[3] = kernel RO without A/D (normal) rc=0
T10 L1[3] read back: adds 0x10000000000004 rc=0
T11 mmu_update L1[4] = kernel RO + GUEST_KERNEL|GLOBAL rc=0
T12 L1[4] read back: adds 0x4 rc=0
T13 mmu_update L1[5] = kernel RO + AVAIL_HIGH bit 61 rc=0
T14 L1[5] read back: adds 0x10000000000004 rc=0
T15 mmu_update L1[6] = kernel RO + PCD|PWT rc=0
T16 L1[6] read back: adds 0x10000000000004 rc=0
T17 mmu_update L1[7] = kernel RO + PAT rc=0
T18 L1[7] read back: adds 0x10000000000004 rc=0
T19 update_va_mapping fixmap slot = kernel RO rc=0
T20 fixmap entry read back: adds 0x10000000000004 rc=0
T21 pin_l2 with a PSE superpage entry rc=-22
T22 pin_l2 (entry 0 -> the pinned L1) rc=0
T23 L2[0] read back: adds 0x4 rc=0
T24 mmu_update L2[1] = PSE superpage rc=-22
T25 mmu_update L2[2] = itself RO (linear) rc=0
T26 mmu_update L2[3] = itself RW (linear) rc=-22
T27 pin_l2 second L2 (entry 0 -> pinned L2 RO) rc=0
T28 unpin second L2 rc=0
T29 pin_l2 second L2 (entry 0 -> pinned L2 RW) rc=-22
T30 pin_l4 (RO self-map, junk in hypervisor slots 256 and 270) rc=0
T31 L3[0] read back: adds 0x4 rc=0
T32 L4[0] read back: adds 0x24 rc=0
T33 L4[1] self-map read back: adds 0x24 rc=0
T34 L4[256] after pin: junk kept no, empty yes rc=0
T35 L4[270] after pin: junk kept no rc=0
T36 mmu_update L4[256] = none (hypervisor slot) rc=-22
T37 mmu_update L4[2] = itself RW (linear) rc=-22
T38 mmu_update L4[2] = itself RO (linear) rc=0
T39 unpin L4 rc=0
T40 pin_l4 (RW self-map in slot 1) rc=-22
T41 pin_l4 (PSE flag in slot 0) rc=-22
T42 unpin L2 rc=0
T43 unpin L1 rc=0
END xen-rules ops=43 ok=35 failed=8";

fn xen_facts() -> Transcript {
    let lines: Vec<&str> = XEN_TRANSCRIPT.lines().collect();
    Transcript::parse(&lines).expect("the recorded real-Xen transcript parses")
}

#[test]
fn recorded_real_xen_facts_are_the_known_rules() {
    // The rcs Xen returned, spelled out (so that an edit of the recording cannot slip by).
    let rcs = xen_facts().rcs();
    let refused: Vec<usize> = (0..rcs.len())
        .filter(|&i| rcs[i] != 0)
        .map(|i| i + 1)
        .collect();
    assert_eq!(refused, [21, 24, 26, 29, 36, 37, 40, 41]);
    assert!(rcs.iter().all(|&rc| rc == 0 || rc == -22));
}

#[test]
fn vmm_prints_real_xens_xen_rules_transcript() {
    if !kvm_or_skip("vmm_prints_real_xens_xen_rules_transcript") {
        return;
    }
    let elf = guest_elf();
    let facts = xen_facts();
    for extra in [&[][..], &["--p2m", "shuffle"][..]] {
        let mut args = vec![
            "run",
            elf.to_str().unwrap(),
            "--cmdline",
            "scenario=xen-rules",
        ];
        args.extend_from_slice(extra);
        let run = vmm(&args);
        assert_eq!(run.status, Some(EXIT_POWEROFF), "{extra:?}\n{}", run.dump());
        let vt = run
            .transcript()
            .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
        if let Some(d) = diff("real Xen (recorded)", &facts, "vmm", &vt) {
            panic!(
                "xen-rules differs from real Xen ({extra:?}):\n{d}\n{}",
                run.stderr
            );
        }
    }
}

#[test]
fn real_xen_still_prints_the_recorded_transcript() {
    if !qemu_or_skip("real_xen_still_prints_the_recorded_transcript") {
        return;
    }
    let elf = guest_elf();
    let xen = run_on_xen(&elf, "scenario=xen-rules");
    assert_eq!(xen.status, XenStatus::Halted, "{}", xen.dump());
    let xt = xen
        .transcript()
        .unwrap_or_else(|e| panic!("{e}\n{}", xen.dump()));
    if let Some(d) = diff("recorded", &xen_facts(), "real Xen now", &xt) {
        panic!(
            "real Xen's xen-rules transcript changed:\n{d}\n{}",
            xen.dump()
        );
    }
    // The VMM is compared with the same recording (previous test): equal by transitivity.
}
