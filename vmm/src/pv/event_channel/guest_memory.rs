//! Event-channel state in guest memory: bit operations, the frames Xen would hold a
//! writable reference on, and the upcall bit of vcpu_info.

use crate::hypercall::{err, Hypervisor};
use crate::pv::time::Blocked;
use pagetable_validator::abi::{errno, shinfo};
use pagetable_validator::Mfn;
use pagetable_validator::PageType;

impl Hypervisor {
    // ---- guest memory: bit operations, frames Xen would hold a writable reference on ----

    /// Whether the VMM may store into the guest frame holding `gpa`: shared_info (a Xen
    /// frame), or a RAM frame that is no pagetable or descriptor page.
    pub(crate) fn guest_frame_writable(&self, gpa: u64) -> bool {
        let mfn = gpa >> 12;
        if mfn == self.xen.shared_info_mfn() {
            return true;
        }
        if mfn >= self.validator.nr_frames() {
            return false;
        }
        match self.validator.frame_info(Mfn(mfn)) {
            Some(f) => matches!(f.ty, PageType::None | PageType::Writable) || f.type_count == 0,
            None => false,
        }
    }

    pub(crate) fn vcpu_info_writable(&self) -> bool {
        self.guest_frame_writable(self.vcpu.pv.vcpu_info_gpa)
    }

    /// `get_page_from_gfn` + `get_page_type(PGT_writable_page)` for a PV guest (gfn = mfn):
    /// the frame's guest-physical address, or -EINVAL.
    pub(crate) fn map_guest_page(&self, mfn: u64) -> Result<u64, i64> {
        let gpa = mfn.checked_mul(4096).ok_or(err(errno::EINVAL))?;
        if mfn >= self.validator.nr_frames() || !self.guest_frame_writable(gpa) {
            return Err(err(errno::EINVAL));
        }
        Ok(gpa)
    }

    pub(super) fn test_bit(&self, base: u64, bit: u32) -> bool {
        let w = base + u64::from(bit / 64) * 8;
        self.ram.read_u64_phys(w).unwrap_or(0) & (1 << (bit % 64)) != 0
    }

    /// Sets (or clears) `bit` of the bitmap at `base`; returns the old value. A store into a
    /// frame the VMM may not write is dropped (the old value is still returned).
    pub(super) fn change_bit(&mut self, base: u64, bit: u32, set: bool) -> bool {
        let w = base + u64::from(bit / 64) * 8;
        let old = self.ram.read_u64_phys(w).unwrap_or(0);
        let m = 1u64 << (bit % 64);
        let new = if set { old | m } else { old & !m };
        if new != old && self.guest_frame_writable(w) {
            self.ram.write_u64_phys(w, new);
        }
        old & m != 0
    }

    pub(super) fn test_bit32(&self, gpa: u64, bit: u32) -> bool {
        let mut b = [0u8; 4];
        self.ram.read_phys(gpa, &mut b) && u32::from_le_bytes(b) & (1 << bit) != 0
    }

    pub(super) fn change_bit32(&mut self, gpa: u64, bit: u32, set: bool) -> bool {
        let mut b = [0u8; 4];
        if !self.ram.read_phys(gpa, &mut b) {
            return false;
        }
        let old = u32::from_le_bytes(b);
        let new = if set {
            old | (1 << bit)
        } else {
            old & !(1 << bit)
        };
        if new != old && self.guest_frame_writable(gpa) {
            self.ram.write_phys(gpa, &new.to_le_bytes());
        }
        old & (1 << bit) != 0
    }

    pub(super) fn shared_info_gpa(&self) -> u64 {
        self.xen.shared_info_mfn() << 12
    }

    /// `vcpu_mark_events_pending` + `vcpu_kick`: the upcall bit, and a blocked vCPU wakes.
    pub fn vcpu_mark_events_pending(&mut self) {
        let at = self.vcpu.pv.vcpu_info_gpa + shinfo::VI_UPCALL_PENDING;
        let old = self.ram.read_phys_u8(at).unwrap_or(0);
        if old & 1 != 0 {
            return;
        }
        if self.vcpu_info_writable() {
            self.ram.write_phys(at, &[old | 1]);
        }
        self.unblock();
    }

    /// `local_events_need_delivery`: upcall pending and not masked.
    pub fn local_events_need_delivery(&self) -> bool {
        let vi = self.vcpu.pv.vcpu_info_gpa;
        self.ram
            .read_phys_u8(vi + shinfo::VI_UPCALL_PENDING)
            .unwrap_or(0)
            != 0
            && self
                .ram
                .read_phys_u8(vi + shinfo::VI_UPCALL_MASK)
                .unwrap_or(1)
                == 0
    }

    /// `evtchn_check_pollers`.
    pub(super) fn evtchn_check_pollers(&mut self, port: u32) {
        if let Blocked::Poll { port: p } = self.time.blocked {
            if p.is_none() || p == Some(port) {
                self.unblock();
            }
        }
    }
}
