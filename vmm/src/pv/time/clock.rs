//! Where time comes from (the guest's TSC, the host's wall clock), Xen's time scale, and
//! what the guest reads: pvclock (`vcpu_info.time`) and the wall clock in shared_info.

use super::PvTime;
use crate::hypercall::Hypervisor;
use pagetable_validator::abi::shinfo;
use pagetable_validator::Mfn;
use std::cell::Cell;
use std::rc::Rc;

/// Where time comes from: the guest's TSC and the host's wall clock.
pub trait Clock {
    /// What `rdtsc` in the guest returns now.
    fn guest_tsc(&self) -> u64;
    /// The guest TSC frequency (kHz).
    fn tsc_khz(&self) -> u64;
    /// The wall clock now: seconds and nanoseconds since the Unix epoch.
    fn wallclock(&self) -> (u64, u32);
}

/// Xen's `struct time_scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeScale {
    pub shift: i8,
    pub mul_frac: u32,
}

impl TimeScale {
    /// `set_time_scale(ts, ticks_per_sec)`.
    pub fn new(ticks_per_sec: u64) -> Self {
        let mut tps64 = ticks_per_sec.max(1);
        let mut shift: i8 = 0;
        while tps64 > 2 * 1_000_000_000 {
            tps64 >>= 1;
            shift -= 1;
        }
        let mut tps32 = tps64 as u32;
        while tps32 <= 1_000_000_000 {
            tps32 <<= 1;
            shift += 1;
        }
        // div_frac(MILLISECS(1000), tps32): (1e9 << 32) / tps32, which fits 32 bits since
        // tps32 > 1e9.
        let mul_frac = ((1_000_000_000u64 << 32) / u64::from(tps32)) as u32;
        TimeScale { shift, mul_frac }
    }

    /// `scale_delta(delta, scale)`: `(delta << shift) * mul_frac >> 32`, 128-bit product.
    pub fn scale(&self, delta: u64) -> u64 {
        let d = if self.shift < 0 {
            delta >> (-self.shift) as u32
        } else {
            delta << self.shift as u32
        };
        ((u128::from(d) * u128::from(self.mul_frac)) >> 32) as u64
    }
}

/// Guest TSC from the host TSC: `guest = host + offset` (KVM adds the vCPU's TSC offset;
/// no TSC scaling is configured, so the rates are equal).
pub struct HostClock {
    offset: u64,
    khz: u64,
}

fn host_tsc() -> u64 {
    // SAFETY: `rdtsc` has no preconditions on x86_64 (the only target this crate builds for);
    // it reads the time-stamp counter and touches no memory.
    unsafe { core::arch::x86_64::_rdtsc() }
}

impl HostClock {
    /// `guest_tsc_now` is a reading of the guest's TSC (KVM's MSR_IA32_TSC) taken between two
    /// host readings `before` and `after`. The offset is taken against `after`, so our idea of
    /// the guest's TSC is never ahead of the guest's own: a `tsc_timestamp` in the guest's
    /// future gives pvclock a negative delta, which Linux scales to a time centuries ahead
    /// and then keeps (its clock is monotonic), freezing the guest's clock. Behind by at most
    /// `after - before` cycles is harmless (the guest's time is that much late).
    pub fn new(before: u64, guest_tsc_now: u64, after: u64, khz: u64) -> Self {
        debug_assert!(after.wrapping_sub(before) < 1 << 63);
        HostClock {
            offset: guest_tsc_now.wrapping_sub(after),
            khz: khz.max(1),
        }
    }

    pub fn host_tsc() -> u64 {
        host_tsc()
    }
}

impl Clock for HostClock {
    fn guest_tsc(&self) -> u64 {
        host_tsc().wrapping_add(self.offset)
    }
    fn tsc_khz(&self) -> u64 {
        self.khz
    }
    fn wallclock(&self) -> (u64, u32) {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (d.as_secs(), d.subsec_nanos())
    }
}

/// A clock the tests (and the fuzzer's fake domain) move by hand.
#[derive(Clone)]
pub struct ManualClock {
    pub tsc: Rc<Cell<u64>>,
    pub khz: u64,
    pub wall: (u64, u32),
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock {
            tsc: Rc::new(Cell::new(0)),
            khz: 1_000_000,
            wall: (1_700_000_000, 0),
        }
    }
}

impl Clock for ManualClock {
    fn guest_tsc(&self) -> u64 {
        self.tsc.get()
    }
    fn tsc_khz(&self) -> u64 {
        self.khz
    }
    fn wallclock(&self) -> (u64, u32) {
        self.wall
    }
}

impl Hypervisor {
    /// Installs the clock the guest's time comes from (system time restarts at 0) and
    /// publishes vcpu_info.time and the wall clock.
    pub fn start_clock(&mut self, clock: Box<dyn Clock>) {
        let t = PvTime::new(clock);
        let old = std::mem::replace(&mut self.time, t);
        self.time.runstate_guest = old.runstate_guest;
        self.time.time_info_guest = old.time_info_guest;
        self.update_vcpu_system_time();
        self.update_wallclock();
    }

    /// `NOW()`.
    pub fn now(&self) -> i64 {
        self.time.now()
    }

    /// `__update_vcpu_system_time(v, force = 1)`: a new (tsc_timestamp, system_time) pair in
    /// vcpu_info.time, written inside an odd version.
    pub fn update_vcpu_system_time(&mut self) {
        let tsc = self.time.clock.guest_tsc();
        let stime = self.time.stime_at(tsc);
        let at = self.vcpu.pv.vcpu_info_gpa + shinfo::VI_TIME;
        let mut b = [0u8; shinfo::TIME_INFO_SIZE as usize];
        let old_version = {
            let mut v = [0u8; 4];
            self.ram.read_phys(at, &mut v);
            u32::from_le_bytes(v)
        };
        // version_update_begin / version_update_end.
        let begin = old_version.wrapping_add(1) | 1;
        let end = begin.wrapping_add(1);
        b[8..16].copy_from_slice(&tsc.to_le_bytes());
        b[16..24].copy_from_slice(&(stime as u64).to_le_bytes());
        b[24..28].copy_from_slice(&self.time.scale.mul_frac.to_le_bytes());
        b[28] = self.time.scale.shift as u8;
        b[29] = 0; // flags: Xen sets TSC_STABLE only with clocksource=tsc (not the default)
        if !self.vcpu_info_writable() {
            return;
        }
        self.ram.write_phys(at, &begin.to_le_bytes());
        self.ram.write_phys(at + 4, &b[4..]);
        self.ram.write_phys(at, &end.to_le_bytes());
        if let Some(va) = self.time.time_info_guest {
            // update_secondary_system_time: best effort through the kernel's tables.
            b[0..4].copy_from_slice(&end.to_le_bytes());
            if let Some(cr3) = self.kernel_cr3() {
                let _ = self.write_guest(cr3, va, &b);
            }
        }
    }

    /// `update_domain_wallclock_time`: the wall clock at system time 0.
    pub fn update_wallclock(&mut self) {
        let (sec, nsec) = self.time.clock.wallclock();
        let now = self.now().max(0) as u64;
        let wall_ns = u128::from(sec) * 1_000_000_000 + u128::from(nsec);
        let base = wall_ns.saturating_sub(u128::from(now));
        let bsec = (base / 1_000_000_000) as u64;
        let bnsec = (base % 1_000_000_000) as u32;
        let si = self.xen.shared_info_mfn() << 12;
        let mut v = [0u8; 4];
        self.ram.read_phys(si + shinfo::WC_VERSION, &mut v);
        let begin = u32::from_le_bytes(v).wrapping_add(1) | 1;
        self.ram
            .write_phys(si + shinfo::WC_VERSION, &begin.to_le_bytes());
        self.ram
            .write_phys(si + shinfo::WC_SEC, &(bsec as u32).to_le_bytes());
        self.ram
            .write_phys(si + shinfo::WC_NSEC, &bnsec.to_le_bytes());
        self.ram
            .write_phys(si + shinfo::WC_SEC_HI, &((bsec >> 32) as u32).to_le_bytes());
        self.ram.write_phys(
            si + shinfo::WC_VERSION,
            &begin.wrapping_add(1).to_le_bytes(),
        );
    }

    /// The kernel-mode L4 (guest-physical), for writes Xen makes through guest handles: the
    /// validator's base (Xen's `guest_table`) in either mode. Not the vCPU's CR3: NEW_BASEPTR
    /// switches tables at once (`write_ptbase`), the CR3 follows only when the exit completes,
    /// so inside a multicall it can name tables already unpinned and reused.
    pub(crate) fn kernel_cr3(&self) -> Option<u64> {
        self.validator.current_base().map(Mfn::maddr)
    }
}
