//! The hypercall tests' fake domain ([`crate::hypercall::testenv`]) with a manual clock: 4 MiB,
//! frame f mapped at `KBASE + f * 4096` by tables in frames 1-5.

use crate::hypercall::Ctx;
use crate::hypercall::Hypervisor;
use crate::pv::time::ManualClock;

pub use crate::hypercall::testenv::{KBASE, L4};

pub fn va(frame: u64) -> u64 {
    KBASE + frame * 4096
}

pub struct T {
    pub hv: Hypervisor,
    pub clock: ManualClock,
}

impl T {
    pub fn new() -> Self {
        let mut hv = crate::hypercall::testenv::hypervisor();
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
