//! A GuestRam-backed [`Hypervisor`] for unit tests of hypercalls (no KVM), on the domain the
//! fuzzer uses too ([`fake_domain`]).

use super::{fake_domain, Ctx, Hypervisor};
use crate::logging::EventLog;
use pagetable_validator::pte::PAGE_SIZE;
use pagetable_validator::Mfn;
use pagetable_validator::Policy;

pub use super::fake_domain::{KBASE, L1S, L4, NR};
/// A free data frame for test buffers.
pub const BUF: u64 = 0x100;

/// The kernel VA of byte `off` of RAM frame `f`.
pub fn va(f: u64, off: u64) -> u64 {
    KBASE + f * PAGE_SIZE + off
}

pub fn hypervisor() -> Hypervisor {
    hypervisor_with(Policy::Enforce)
}

pub fn hypervisor_with(policy: Policy) -> Hypervisor {
    let (ram, xen, _, v) = fake_domain::build(policy);
    let log = EventLog::with_sinks(None, "test".into(), Box::new(std::io::sink()));
    let mut hv = fake_domain::hypervisor(ram, xen, v, log);
    hv.validator
        .register_initial(&mut hv.ram, Mfn(L4))
        .expect("the test tables validate");
    hv
}

pub fn ctx() -> Ctx {
    Ctx::new(L4 << 12, KBASE + 0x20_0000)
}

impl Hypervisor {
    pub fn t_write(&self, f: u64, off: u64, b: &[u8]) {
        assert!(self.ram.write_phys(f * PAGE_SIZE + off, b));
    }
    pub fn t_read<const N: usize>(&self, f: u64, off: u64) -> [u8; N] {
        let mut b = [0u8; N];
        assert!(self.ram.read_phys(f * PAGE_SIZE + off, &mut b));
        b
    }
    pub fn t_u16(&self, f: u64, off: u64) -> u16 {
        u16::from_le_bytes(self.t_read(f, off))
    }
    pub fn t_u32(&self, f: u64, off: u64) -> u32 {
        u32::from_le_bytes(self.t_read(f, off))
    }
    pub fn t_u64(&self, f: u64, off: u64) -> u64 {
        u64::from_le_bytes(self.t_read(f, off))
    }
}

/// Hostile arguments for grant_table_op, physdev_op and platform_op: random sub-commands,
/// pointers (valid, read-only pagetables, Xen's range, non-canonical, unmapped, random),
/// counts and buffer contents. Nothing may panic, and the guest's pagetables (frames 1-5)
/// must be exactly as before: no hypercall output lands in a validated table.
#[test]
fn hostile_arguments_to_the_device_hypercalls() {
    use pagetable_validator::abi::hypercall as hc;
    let mut hv = hypervisor();
    let tables: Vec<[u8; 4096]> = (L4..=L1S[1]).map(|f| hv.t_read(f, 0)).collect();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000u32 {
        let mut junk = [0u8; 256];
        for b in junk.iter_mut() {
            *b = match rnd() % 4 {
                0 => 0,
                1 => 0xff,
                _ => rnd() as u8,
            };
        }
        hv.t_write(BUF, 0, &junk);
        let ptr = match rnd() % 8 {
            0 => va(L1S[0], rnd() % 4096),
            1 => 0xffff_8000_0000_0000 + rnd() % 0x1000,
            2 => 0x0000_8000_0000_0000,
            3 => rnd(),
            4 => va(NR + 5, 0),
            _ => va(BUF, rnd() % 128),
        };
        let (nr, a0) = match i % 3 {
            0 => {
                let mut cmd = rnd() % 14;
                if rnd() % 8 == 0 {
                    cmd |= (rnd() % 4) << 12;
                }
                (hc::GRANT_TABLE_OP, cmd)
            }
            1 => (hc::PHYSDEV_OP, rnd() % 33),
            _ => (hc::PLATFORM_OP, ptr),
        };
        let count = match rnd() % 5 {
            0 => 0,
            1 => 1,
            2 => 600,
            3 => u64::from(u32::MAX),
            _ => rnd() % 8,
        };
        let mut c = ctx();
        let _ = hv.hypercall(&mut c, nr, [a0, ptr, count, 0, 0, 0]);
    }
    for (k, f) in (L4..=L1S[1]).enumerate() {
        assert!(
            hv.t_read::<4096>(f, 0) == tables[k],
            "pagetable frame {f} changed"
        );
    }
    assert!(hv.gnttab.nr_frames <= 64 && hv.physdev.pci.len() <= super::physdev::MAX_PCI_DEVICES);
}
