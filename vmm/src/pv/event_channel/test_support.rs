//! A Hypervisor on plain guest memory (no KVM), built like the fuzzer's fake domain: 4 MiB,
//! frame f mapped at `KBASE + f * 4096` by tables in frames 1-5.

use crate::hypercall::{Ctx, Hypervisor};
use crate::logging::EventLog;
use crate::memory::GuestRam;
use crate::pv::cpuid::CpuidTable;
use crate::pv::time::ManualClock;
use crate::pv::xen_area::{self, XenLayout};
use pagetable_validator::pte::{mk_pte, _PAGE_ACCESSED, _PAGE_PRESENT, _PAGE_RW};
use pagetable_validator::{Policy, Validator};

pub const NR: u64 = 1024;
pub const KBASE: u64 = 0xffff_ffff_8000_0000;
pub const L4: u64 = 1;

pub fn va(frame: u64) -> u64 {
    KBASE + frame * 4096
}

pub struct T {
    pub hv: Hypervisor,
    pub clock: ManualClock,
}

impl T {
    pub fn new() -> Self {
        let xen = XenLayout::new(NR).expect("Xen area");
        let ram = GuestRam::new(4, Some((xen.base_frame, xen.nr_frames))).expect("ram");
        let t = |f: u64| mk_pte(f, _PAGE_PRESENT | _PAGE_RW | _PAGE_ACCESSED);
        ram.write_u64_phys(L4 * 4096 + 511 * 8, t(2));
        ram.write_u64_phys(2 * 4096 + 510 * 8, t(3));
        for (i, l1) in [4u64, 5].into_iter().enumerate() {
            ram.write_u64_phys(3 * 4096 + i as u64 * 8, t(l1));
            for s in 0..512 {
                ram.write_u64_phys(l1 * 4096 + s * 8, t(i as u64 * 512 + s));
            }
        }
        let m2p: Vec<u64> = (0..NR).collect();
        xen_area::build(&xen, &ram, &m2p).expect("Xen area builds");
        let mut v = Validator::new(NR, Policy::Enforce);
        v.set_m2p(m2p);
        let log = EventLog::with_sinks(None, "test".into(), Box::new(std::io::sink()));
        let mut hv = Hypervisor::new(
            ram,
            v,
            xen,
            CpuidTable::default(),
            log,
            Box::new(std::io::sink()),
        );
        hv.vcpu.cpu.sregs.cr3 = L4 << 12;
        let clock = ManualClock {
            khz: 3_000_000,
            ..ManualClock::default()
        };
        clock.tsc.set(1_000_000);
        hv.start_clock(Box::new(clock.clone()));
        T { hv, clock }
    }

    pub fn call(&mut self, nr: u64, args: [u64; 6]) -> i64 {
        let mut ctx = Ctx::new(L4 << 12, KBASE);
        self.hv.hypercall(&mut ctx, nr, args)
    }

    pub fn write(&self, frame: u64, off: u64, b: &[u8]) {
        assert!(self.hv.ram.write_phys(frame * 4096 + off, b));
    }

    pub fn read_u32(&self, gpa: u64) -> u32 {
        let mut b = [0u8; 4];
        assert!(self.hv.ram.read_phys(gpa, &mut b));
        u32::from_le_bytes(b)
    }

    pub fn byte(&self, gpa: u64) -> u8 {
        self.hv.ram.read_phys_u8(gpa).expect("readable")
    }

    /// Advances the guest TSC by `ns` nanoseconds and a tick (3 GHz; the scale truncates).
    pub fn advance_ns(&self, ns: u64) {
        self.clock.tsc.set(self.clock.tsc.get() + ns * 3 + 3);
    }
}
