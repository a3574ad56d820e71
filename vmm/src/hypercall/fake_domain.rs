//! The small domain the fuzzer and the hypercall unit tests run on (no KVM): 4 MiB of RAM, the
//! Xen area, and kernel tables (L4 frame 1, L3 2, L2 3, L1s 4-5) that map every RAM frame `f`
//! at `KBASE + f * 4096`, writable except the tables themselves.

use crate::hypercall::Hypervisor;
use crate::logging::EventLog;
use crate::memory::GuestRam;
use crate::pv::cpuid::CpuidTable;
use crate::pv::xen_area::{self, XenLayout};
use pagetable_validator::pte::{
    mk_pte, _PAGE_ACCESSED, _PAGE_DIRTY, _PAGE_PRESENT, _PAGE_RW, PAGE_SIZE,
};
use pagetable_validator::Mfn;
use pagetable_validator::{Policy, Rules, Validator, L1_DISALLOW_IO_PRIV};

pub const MEM_MIB: u64 = 4;
pub const NR: u64 = MEM_MIB * 256;
/// Where the domain's frames are mapped: frame f at `KBASE + f * 4096`.
pub const KBASE: u64 = 0xffff_ffff_8000_0000;
/// The builder-like tables.
pub const L4: u64 = 1;
pub const L3: u64 = 2;
pub const L2: u64 = 3;
pub const L1S: [u64; 2] = [4, 5];

/// Like `vmm run`'s domain: dom0, so cache attributes are allowed in L1 entries.
pub fn rules() -> Rules {
    Rules {
        l1_disallow: L1_DISALLOW_IO_PRIV,
        ..Rules::default()
    }
}

/// What every fake domain starts from: `mib` MiB of RAM (`nr` frames) with the Xen area beyond
/// it, an identity M2P, and a validator under `policy`/`rules` that knows the Xen area (its L4
/// slots and the shared-info frame). No guest tables yet.
pub fn xen_domain(
    nr: u64,
    mib: u64,
    policy: Policy,
    rules: Rules,
) -> (GuestRam, XenLayout, Vec<u64>, Validator) {
    let xen = XenLayout::new(nr).expect("a Xen area for the domain");
    let ram = GuestRam::new(mib, Some((xen.base_frame, xen.nr_frames))).expect("guest memory");
    let m2p: Vec<u64> = (0..nr).collect();
    xen_area::build(&xen, &ram, &m2p).expect("the Xen area builds");
    let mut v = Validator::with_rules(nr, policy, rules);
    v.set_xen_l4_slots(xen.l4_slots(), xen.ro_mpt_l4e());
    v.share_xen_frame(Mfn(xen.shared_info_mfn()));
    v.set_m2p(m2p.clone());
    (ram, xen, m2p, v)
}

/// The domain's memory (tables and Xen area written), its Xen layout, its identity M2P and a
/// validator that knows the Xen area; the initial tables are not registered yet.
pub fn build(policy: Policy) -> (GuestRam, XenLayout, Vec<u64>, Validator) {
    let (ram, xen, m2p, v) = xen_domain(NR, MEM_MIB, policy, rules());
    let table = |f: u64| _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED | _PAGE_DIRTY | (f << 12);
    ram.write_u64_phys(L4 * PAGE_SIZE + 511 * 8, table(L3));
    ram.write_u64_phys(L3 * PAGE_SIZE + 510 * 8, table(L2));
    for (i, &l1) in L1S.iter().enumerate() {
        ram.write_u64_phys(L2 * PAGE_SIZE + i as u64 * 8, table(l1));
        for s in 0..512u64 {
            let f = i as u64 * 512 + s;
            let rw = if (L4..=L1S[1]).contains(&f) {
                0
            } else {
                _PAGE_RW
            };
            ram.write_u64_phys(
                l1 * PAGE_SIZE + s * 8,
                mk_pte(f, _PAGE_PRESENT | _PAGE_ACCESSED | rw),
            );
        }
    }
    (ram, xen, m2p, v)
}

/// The Hypervisor serving the domain `build` made, logging to `log`; its vCPU is where the
/// builder leaves one: on the initial tables (not registered yet), in kernel mode.
pub fn hypervisor(ram: GuestRam, xen: XenLayout, v: Validator, log: EventLog) -> Hypervisor {
    let mut hv = Hypervisor::new(
        ram,
        v,
        xen,
        CpuidTable::default(),
        log,
        Box::new(std::io::sink()),
    );
    hv.vcpu.cpu.sregs.cr3 = L4 << 12;
    hv
}
