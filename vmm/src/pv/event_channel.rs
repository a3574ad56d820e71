//! Event channels as Xen 4.17 serves them to a one-vCPU dom0 (`common/event_channel.c`,
//! `event_2l.c`, `event_fifo.c`).
//!
//! Ports live in buckets of [`EVTCHNS_PER_BUCKET`] (Xen's `valid_evtchns`: a port is valid
//! once its bucket exists, and buckets are created up to the highest port allocated); the
//! domain may use [`MAX_2L_PORTS`] ports with the 2-level ABI and
//! [`EVTCHN_FIFO_NR_CHANNELS`] with the FIFO ABI, so the state is bounded. Port 0 is
//! reserved. The only domain is us (DOMID_SELF or domid 0): "interdomain" channels connect
//! two of our own ports.
//!
//! Pending state is guest memory, as on Xen: the 2-level ABI's `evtchn_pending`/`evtchn_mask`
//! bitmaps in shared_info and `evtchn_pending_sel`/`evtchn_upcall_pending` in vcpu_info; the
//! FIFO ABI's event words and control block in guest frames the guest gave with
//! `EVTCHNOP_init_control`/`expand_array`. The guest does not run while the VMM handles an
//! exit, so Xen's atomic bit operations are plain read-modify-writes here. Setting the upcall
//! bit wakes a blocked vCPU; exit.rs's `deliver_events` then enters the event callback.
//!
//! Xen takes a writable type reference on each guest frame it maps for the FIFO ABI or a
//! moved vcpu_info (`get_page_type(PGT_writable_page)`). The validator has no such Xen-held
//! reference, so the frame is checked when it is registered (no pagetable or descriptor type
//! — as Xen refuses) and again before every store the VMM makes into it: a frame that became
//! a pagetable meanwhile is never written.

use crate::hypercall::{err, handle_okay, Ctx, Hypervisor};
use crate::pv::time::Blocked;
use pagetable_validator::abi::evtchn::*;
use pagetable_validator::abi::{domid, errno, hypercall as hc, shinfo};
use pagetable_validator::PageType;

/// Xen's `EVTCHNS_PER_BUCKET` on x86_64 (4096 / next_power_of_2(sizeof(struct evtchn))).
pub const EVTCHNS_PER_BUCKET: u32 = 64;
/// `BITS_PER_EVTCHN_WORD(d)^2` for a 64-bit guest.
pub const MAX_2L_PORTS: u32 = 64 * 64;
/// Event words per FIFO event-array page, and the most pages.
pub const FIFO_WORDS_PER_PAGE: u32 = 1024;
pub const FIFO_MAX_ARRAY_PAGES: usize = (EVTCHN_FIFO_NR_CHANNELS / FIFO_WORDS_PER_PAGE) as usize;

/// `struct evtchn`'s state (`ECS_*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChanState {
    #[default]
    Free,
    Reserved,
    Unbound {
        remote_dom: u16,
    },
    /// Bound to another of our ports.
    Interdomain {
        remote_port: u32,
    },
    Virq(u32),
    Ipi,
}

impl ChanState {
    /// `evtchn_usable`: state > ECS_RESERVED (no Xen-consumed channels here).
    fn usable(self) -> bool {
        !matches!(self, ChanState::Free | ChanState::Reserved)
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Chan {
    pub state: ChanState,
    pub notify_vcpu: u32,
    /// FIFO priority, the queue it was last linked on, and the pending state saved while its
    /// event-array page is missing.
    pub priority: u8,
    pub last_priority: u8,
    pub fifo_pending: bool,
}

/// The FIFO ABI's per-domain (and, for our one vCPU, per-vCPU) state.
#[derive(Clone, Debug, Default)]
pub struct Fifo {
    /// Guest-physical address of vCPU 0's control block.
    pub control_block: Option<u64>,
    /// Queue tails (`evtchn_fifo_queue.tail`), by priority.
    pub tails: [u32; EVTCHN_FIFO_MAX_QUEUES as usize],
    /// Guest-physical addresses of the event-array pages.
    pub event_array: Vec<u64>,
}

impl Fifo {
    fn num_evtchns(&self) -> u32 {
        self.event_array.len() as u32 * FIFO_WORDS_PER_PAGE
    }
}

/// The domain's event channels.
#[derive(Clone, Debug)]
pub struct EventChannels {
    pub chans: Vec<Chan>,
    /// `active_evtchns`.
    pub active: u32,
    pub virq_to_evtchn: [u32; NR_VIRQS as usize],
    pub fifo: Option<Fifo>,
    /// `next_evtchn`: where a preempted EVTCHNOP_reset resumes (0: none in progress).
    pub next_evtchn: u32,
}

impl Default for EventChannels {
    /// `evtchn_init`: one bucket, port 0 reserved.
    fn default() -> Self {
        let mut chans = vec![Chan::default(); EVTCHNS_PER_BUCKET as usize];
        chans[0].state = ChanState::Reserved;
        EventChannels {
            chans,
            active: 0,
            virq_to_evtchn: [0; NR_VIRQS as usize],
            fifo: None,
            next_evtchn: 0,
        }
    }
}

/// `virq_is_global` (x86: every arch VIRQ is global).
pub fn virq_is_global(virq: u32) -> bool {
    !matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"))
}
fn put_u32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}

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
        match self.validator.frame_info(mfn) {
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

    fn test_bit(&self, base: u64, bit: u32) -> bool {
        let w = base + u64::from(bit / 64) * 8;
        self.ram.read_u64_phys(w).unwrap_or(0) & (1 << (bit % 64)) != 0
    }

    /// Sets (or clears) `bit` of the bitmap at `base`; returns the old value. A store into a
    /// frame the VMM may not write is dropped (the old value is still returned).
    fn change_bit(&mut self, base: u64, bit: u32, set: bool) -> bool {
        let w = base + u64::from(bit / 64) * 8;
        let old = self.ram.read_u64_phys(w).unwrap_or(0);
        let m = 1u64 << (bit % 64);
        let new = if set { old | m } else { old & !m };
        if new != old && self.guest_frame_writable(w) {
            self.ram.write_u64_phys(w, new);
        }
        old & m != 0
    }

    fn test_bit32(&self, gpa: u64, bit: u32) -> bool {
        let mut b = [0u8; 4];
        self.ram.read_phys(gpa, &mut b) && u32::from_le_bytes(b) & (1 << bit) != 0
    }

    fn change_bit32(&mut self, gpa: u64, bit: u32, set: bool) -> bool {
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

    fn shared_info_gpa(&self) -> u64 {
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
    fn evtchn_check_pollers(&mut self, port: u32) {
        if let Blocked::Poll { port: p } = self.time.blocked {
            if p.is_none() || p == Some(port) {
                self.unblock();
            }
        }
    }

    // ---- port bookkeeping ----

    fn max_evtchns(&self) -> u32 {
        if self.events.fifo.is_some() {
            EVTCHN_FIFO_NR_CHANNELS
        } else {
            MAX_2L_PORTS
        }
    }

    pub fn port_is_valid(&self, port: u32) -> bool {
        (port as usize) < self.events.chans.len()
    }

    pub fn chan(&self, port: u32) -> Option<Chan> {
        self.events.chans.get(port as usize).copied()
    }

    fn chan_mut(&mut self, port: u32) -> &mut Chan {
        &mut self.events.chans[port as usize]
    }

    /// `evtchn_allocate_port`.
    fn evtchn_allocate_port(&mut self, port: u32) -> Result<(), i64> {
        if port >= self.max_evtchns() {
            return Err(err(errno::ENOSPC));
        }
        if self.port_is_valid(port) {
            if self.events.chans[port as usize].state != ChanState::Free || self.fifo_is_busy(port)
            {
                return Err(err(errno::EBUSY));
            }
        } else {
            let want = (port / EVTCHNS_PER_BUCKET + 1) * EVTCHNS_PER_BUCKET;
            self.events.chans.resize(want as usize, Chan::default());
        }
        self.events.active += 1;
        Ok(())
    }

    /// `get_free_port`.
    fn get_free_port(&mut self) -> Result<u32, i64> {
        let mut port = 0;
        loop {
            match self.evtchn_allocate_port(port) {
                Ok(()) => return Ok(port),
                Err(e) if e == err(errno::EBUSY) => port += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// `check_free_port`.
    fn check_free_port(&mut self, port: u32) {
        if self.chan(port).is_some_and(|c| c.state == ChanState::Free) {
            self.events.active -= 1;
        }
    }

    /// `evtchn_port_init`.
    fn evtchn_port_init(&mut self, port: u32) {
        if self.events.fifo.is_some() {
            self.chan_mut(port).priority = EVTCHN_FIFO_PRIORITY_DEFAULT as u8;
            if let Some(w) = self.fifo_word(port) {
                if self.test_bit32(w, EVTCHN_FIFO_LINKED) {
                    log::info!("event channel: port {port} already on a queue");
                }
            }
        }
    }

    /// `evtchn_free`.
    fn evtchn_free(&mut self, port: u32) {
        self.evtchn_port_clear_pending(port);
        self.events.active -= 1;
        let c = self.chan_mut(port);
        c.state = ChanState::Free;
        c.notify_vcpu = 0;
    }

    // ---- the port ops (2-level or FIFO) ----

    /// `evtchn_port_set_pending`.
    pub fn evtchn_port_set_pending(&mut self, port: u32) {
        if !self.chan(port).is_some_and(|c| c.state.usable()) {
            return;
        }
        if self.events.fifo.is_some() {
            self.fifo_set_pending(port);
        } else {
            self.evtchn_2l_set_pending(port);
        }
    }

    fn evtchn_port_clear_pending(&mut self, port: u32) {
        if !self.chan(port).is_some_and(|c| c.state.usable()) {
            return;
        }
        if self.events.fifo.is_some() {
            if let Some(w) = self.fifo_word(port) {
                self.change_bit32(w, EVTCHN_FIFO_PENDING, false);
            }
        } else {
            let si = self.shared_info_gpa();
            self.change_bit(si + shinfo::EVTCHN_PENDING, port, false);
        }
    }

    fn evtchn_port_unmask(&mut self, port: u32) {
        if !self.chan(port).is_some_and(|c| c.state.usable()) {
            return;
        }
        if self.events.fifo.is_some() {
            if let Some(w) = self.fifo_word(port) {
                self.change_bit32(w, EVTCHN_FIFO_MASKED, false);
                if self.test_bit32(w, EVTCHN_FIFO_PENDING) {
                    self.fifo_set_pending(port);
                }
            }
        } else {
            let si = self.shared_info_gpa();
            let sel = self.vcpu.pv.vcpu_info_gpa + shinfo::VI_PENDING_SEL;
            if self.change_bit(si + shinfo::EVTCHN_MASK, port, false)
                && self.test_bit(si + shinfo::EVTCHN_PENDING, port)
                && !self.change_bit(sel, port / 64, true)
            {
                self.vcpu_mark_events_pending();
            }
        }
    }

    fn evtchn_is_pending(&self, port: u32) -> bool {
        if self.events.fifo.is_some() {
            self.fifo_word(port)
                .is_some_and(|w| self.test_bit32(w, EVTCHN_FIFO_PENDING))
        } else {
            port < MAX_2L_PORTS
                && self.test_bit(self.shared_info_gpa() + shinfo::EVTCHN_PENDING, port)
        }
    }

    /// `evtchn_2l_set_pending`.
    fn evtchn_2l_set_pending(&mut self, port: u32) {
        let si = self.shared_info_gpa();
        if self.change_bit(si + shinfo::EVTCHN_PENDING, port, true) {
            return;
        }
        let sel = self.vcpu.pv.vcpu_info_gpa + shinfo::VI_PENDING_SEL;
        if !self.test_bit(si + shinfo::EVTCHN_MASK, port) && !self.change_bit(sel, port / 64, true)
        {
            self.vcpu_mark_events_pending();
        }
        self.evtchn_check_pollers(port);
    }

    /// `evtchn_fifo_word_from_port`: the guest-physical address of the event word.
    fn fifo_word(&self, port: u32) -> Option<u64> {
        let f = self.events.fifo.as_ref()?;
        if port >= f.num_evtchns() {
            return None;
        }
        let page = f.event_array[(port / FIFO_WORDS_PER_PAGE) as usize];
        Some(page + u64::from(port % FIFO_WORDS_PER_PAGE) * 4)
    }

    fn fifo_is_busy(&self, port: u32) -> bool {
        self.fifo_word(port)
            .is_some_and(|w| self.test_bit32(w, EVTCHN_FIFO_LINKED))
    }

    /// `evtchn_fifo_set_link`: the guest is stopped, so the first attempt decides.
    fn fifo_set_link(&mut self, word: u64, link: u32) -> bool {
        let mut b = [0u8; 4];
        if !self.ram.read_phys(word, &mut b) {
            return false;
        }
        let w = u32::from_le_bytes(b);
        if w & (1 << EVTCHN_FIFO_LINKED) == 0 {
            return false;
        }
        let new = (w & !((1 << EVTCHN_FIFO_BUSY) | EVTCHN_FIFO_LINK_MASK)) | link;
        if self.guest_frame_writable(word) {
            self.ram.write_phys(word, &new.to_le_bytes());
        }
        true
    }

    /// `evtchn_fifo_set_pending` for our one vCPU.
    fn fifo_set_pending(&mut self, port: u32) {
        let Some(word) = self.fifo_word(port) else {
            self.chan_mut(port).fifo_pending = true;
            return;
        };
        let c = self.chan(port).unwrap_or_default();
        let q = usize::from(c.priority).min(EVTCHN_FIFO_MAX_QUEUES as usize - 1);
        let old_q = usize::from(c.last_priority).min(EVTCHN_FIFO_MAX_QUEUES as usize - 1);
        let Some(cb) = self.events.fifo.as_ref().and_then(|f| f.control_block) else {
            log::info!("event channel: vCPU 0 has no FIFO control block");
            return;
        };
        let check_pollers = !self.change_bit32(word, EVTCHN_FIFO_PENDING, true);
        let mut linked = true;
        if !self.test_bit32(word, EVTCHN_FIFO_MASKED)
            && !self.change_bit32(word, EVTCHN_FIFO_LINKED, true)
        {
            let f = self.events.fifo.as_mut().expect("fifo");
            if f.tails[old_q] == port {
                f.tails[old_q] = 0;
            }
            // Moved to a different queue: remember the new one.
            if old_q != q {
                self.chan_mut(port).last_priority = q as u8;
            }
            linked = false;
            let tail = self.events.fifo.as_ref().map_or(0, |f| f.tails[q]);
            if tail != 0 {
                if let Some(tw) = self.fifo_word(tail) {
                    linked = self.fifo_set_link(tw, port);
                }
            }
            if !linked {
                let head = cb + FIFO_CONTROL_BLOCK_HEAD + q as u64 * 4;
                if self.guest_frame_writable(head) {
                    self.ram.write_phys(head, &port.to_le_bytes());
                }
            }
            if let Some(f) = self.events.fifo.as_mut() {
                f.tails[q] = port;
            }
        }
        if !linked && !self.change_bit32(cb, q as u32, true) {
            self.vcpu_mark_events_pending();
        }
        if check_pollers {
            self.evtchn_check_pollers(port);
        }
    }

    // ---- the operations ----

    /// Our domain by `rcu_lock_domain_by_any_id`: DOMID_SELF or our id 0; else -ESRCH.
    fn evtchn_domain(d: u16) -> Result<(), i64> {
        if d == domid::DOMID_SELF || d == 0 {
            Ok(())
        } else {
            Err(err(errno::ESRCH))
        }
    }

    /// `evtchn_alloc_unbound`; returns the port.
    pub fn evtchn_alloc_unbound(&mut self, dom: u16, remote_dom: u16) -> Result<u32, i64> {
        Self::evtchn_domain(dom)?;
        let port = self.get_free_port()?;
        let remote_dom = if remote_dom == domid::DOMID_SELF {
            0
        } else {
            remote_dom
        };
        self.chan_mut(port).state = ChanState::Unbound { remote_dom };
        self.evtchn_port_init(port);
        self.check_free_port(port);
        Ok(port)
    }

    /// `evtchn_bind_interdomain` with ourselves as the remote domain.
    pub fn evtchn_bind_interdomain(&mut self, remote_dom: u16, rport: u32) -> Result<u32, i64> {
        Self::evtchn_domain(remote_dom)?;
        let lport = self.get_free_port()?;
        let ok = matches!(
            self.chan(rport).map(|c| c.state),
            Some(ChanState::Unbound { remote_dom: 0 })
        );
        if !ok {
            self.check_free_port(lport);
            return Err(err(errno::EINVAL));
        }
        self.chan_mut(lport).state = ChanState::Interdomain { remote_port: rport };
        self.evtchn_port_init(lport);
        self.chan_mut(rport).state = ChanState::Interdomain { remote_port: lport };
        // "We may have lost notifications on the remote unbound port."
        self.evtchn_port_set_pending(lport);
        self.check_free_port(lport);
        Ok(lport)
    }

    /// `evtchn_bind_virq`.
    pub fn evtchn_bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<u32, i64> {
        if virq >= NR_VIRQS {
            return Err(err(errno::EINVAL));
        }
        if virq_is_global(virq) && vcpu != 0 {
            return Err(err(errno::EINVAL));
        }
        if vcpu != 0 {
            return Err(err(errno::ENOENT));
        }
        if self.events.virq_to_evtchn[virq as usize] != 0 {
            return Err(err(errno::EEXIST));
        }
        let port = self.get_free_port()?;
        let c = self.chan_mut(port);
        c.state = ChanState::Virq(virq);
        c.notify_vcpu = vcpu;
        self.evtchn_port_init(port);
        self.events.virq_to_evtchn[virq as usize] = port;
        Ok(port)
    }

    /// `evtchn_bind_ipi`.
    pub fn evtchn_bind_ipi(&mut self, vcpu: u32) -> Result<u32, i64> {
        if vcpu != 0 {
            return Err(err(errno::ENOENT));
        }
        let port = self.get_free_port()?;
        let c = self.chan_mut(port);
        c.state = ChanState::Ipi;
        c.notify_vcpu = vcpu;
        self.evtchn_port_init(port);
        Ok(port)
    }

    /// `evtchn_close(d, port, guest = true)`.
    pub fn evtchn_close(&mut self, port: u32) -> Result<(), i64> {
        let Some(c) = self.chan(port) else {
            return Err(err(errno::EINVAL));
        };
        match c.state {
            ChanState::Free | ChanState::Reserved => return Err(err(errno::EINVAL)),
            ChanState::Unbound { .. } | ChanState::Ipi => {}
            ChanState::Virq(v) => self.events.virq_to_evtchn[v as usize] = 0,
            ChanState::Interdomain { remote_port } => {
                self.evtchn_free(port);
                if let Some(r) = self.events.chans.get_mut(remote_port as usize) {
                    r.state = ChanState::Unbound { remote_dom: 0 };
                }
                return Ok(());
            }
        }
        self.evtchn_free(port);
        Ok(())
    }

    /// `evtchn_send`.
    pub fn evtchn_send(&mut self, port: u32) -> Result<(), i64> {
        let Some(c) = self.chan(port) else {
            return Err(err(errno::EINVAL));
        };
        match c.state {
            ChanState::Interdomain { remote_port } => {
                self.evtchn_port_set_pending(remote_port);
                Ok(())
            }
            ChanState::Ipi => {
                self.evtchn_port_set_pending(port);
                Ok(())
            }
            ChanState::Unbound { .. } => Ok(()),
            _ => Err(err(errno::EINVAL)),
        }
    }

    /// `send_guest_vcpu_virq` / `send_guest_global_virq` (vCPU 0 either way).
    pub fn send_guest_vcpu_virq(&mut self, virq: u32) {
        let Some(&port) = self.events.virq_to_evtchn.get(virq as usize) else {
            return;
        };
        if port != 0 {
            self.evtchn_port_set_pending(port);
        }
    }

    /// `evtchn_status`: (status, vcpu, union word 0, union word 1).
    pub fn evtchn_status(&self, dom: u16, port: u32) -> Result<(u32, u32, u32, u32), i64> {
        Self::evtchn_domain(dom)?;
        let Some(c) = self.chan(port) else {
            return Err(err(errno::EINVAL));
        };
        let (st, a, b) = match c.state {
            ChanState::Free | ChanState::Reserved => (EVTCHNSTAT_CLOSED, None, None),
            ChanState::Unbound { remote_dom } => {
                (EVTCHNSTAT_UNBOUND, Some(u32::from(remote_dom)), None)
            }
            ChanState::Interdomain { remote_port } => {
                (EVTCHNSTAT_INTERDOMAIN, Some(0), Some(remote_port))
            }
            ChanState::Virq(v) => (EVTCHNSTAT_VIRQ, Some(v), None),
            ChanState::Ipi => (EVTCHNSTAT_IPI, None, None),
        };
        Ok((
            st,
            c.notify_vcpu,
            a.unwrap_or(u32::MAX),
            b.unwrap_or(u32::MAX),
        ))
    }

    /// `evtchn_bind_vcpu`.
    pub fn evtchn_bind_vcpu(&mut self, port: u32, vcpu: u32) -> Result<(), i64> {
        if vcpu != 0 {
            return Err(err(errno::ENOENT));
        }
        let Some(c) = self.chan(port) else {
            return Err(err(errno::EINVAL));
        };
        match c.state {
            ChanState::Virq(v) if virq_is_global(v) => {}
            ChanState::Unbound { .. } | ChanState::Interdomain { .. } => {}
            _ => return Err(err(errno::EINVAL)),
        }
        self.chan_mut(port).notify_vcpu = vcpu;
        Ok(())
    }

    /// `evtchn_unmask`.
    pub fn evtchn_unmask(&mut self, port: u32) -> Result<(), i64> {
        if !self.port_is_valid(port) {
            return Err(err(errno::EINVAL));
        }
        self.evtchn_port_unmask(port);
        Ok(())
    }

    /// `evtchn_reset(d, resuming)`, never preempted (every port is closed in one exit:
    /// at most [`EVTCHN_FIFO_NR_CHANNELS`] constant-time closes).
    pub fn evtchn_reset(&mut self, dom: u16, resuming: bool) -> Result<(), i64> {
        Self::evtchn_domain(dom)?;
        let next = self.events.next_evtchn;
        let mut i = if resuming { next } else { u32::from(next == 0) };
        if i > next {
            self.events.next_evtchn = i;
        }
        if i == 0 {
            return Err(err(errno::EBUSY));
        }
        while self.port_is_valid(i) && self.events.active > 0 {
            let _ = self.evtchn_close(i);
            i += 1;
        }
        self.events.next_evtchn = 0;
        if self.events.active > 0 {
            return Err(err(errno::EAGAIN));
        }
        if self.events.fifo.is_some() {
            // Back to the 2-level ABI.
            self.events.fifo = None;
        }
        Ok(())
    }

    /// `evtchn_fifo_init_control`; `link_bits` is always 17.
    pub fn evtchn_fifo_init_control(
        &mut self,
        gfn: u64,
        offset: u32,
        vcpu: u32,
    ) -> Result<(), i64> {
        if vcpu != 0 {
            return Err(err(errno::ENOENT));
        }
        if u64::from(offset) > 4096 - FIFO_CONTROL_BLOCK_SIZE || offset & 7 != 0 {
            return Err(err(errno::EINVAL));
        }
        if self.events.fifo.is_some() {
            // map_control_block: vCPU 0 has one already.
            return Err(err(errno::EINVAL));
        }
        let page = self.map_guest_page(gfn)?;
        let prev_evtchns = self.max_evtchns();
        self.events.fifo = Some(Fifo {
            control_block: Some(page + u64::from(offset)),
            ..Fifo::default()
        });
        // setup_ports: pending 2-level state is remembered, priorities reset.
        let si = self.shared_info_gpa();
        for port in 1..prev_evtchns {
            if !self.port_is_valid(port) {
                break;
            }
            let pending = self.test_bit(si + shinfo::EVTCHN_PENDING, port);
            let c = self.chan_mut(port);
            if pending {
                c.fifo_pending = true;
            }
            c.priority = EVTCHN_FIFO_PRIORITY_DEFAULT as u8;
        }
        Ok(())
    }

    /// `evtchn_fifo_expand_array`.
    pub fn evtchn_fifo_expand_array(&mut self, gfn: u64) -> Result<(), i64> {
        let Some(f) = &self.events.fifo else {
            return Err(err(errno::EOPNOTSUPP));
        };
        if f.event_array.len() >= FIFO_MAX_ARRAY_PAGES {
            return Err(err(errno::ENOSPC));
        }
        let first = f.num_evtchns();
        let page = self.map_guest_page(gfn)?;
        let f = self.events.fifo.as_mut().expect("fifo");
        f.event_array.push(page);
        let end = f.num_evtchns();
        // Re-raise what was pending while the page was missing.
        for port in first..end {
            if !self.port_is_valid(port) {
                break;
            }
            if self.events.chans[port as usize].fifo_pending {
                self.evtchn_port_set_pending(port);
            }
        }
        Ok(())
    }

    /// `evtchn_set_priority`.
    pub fn evtchn_set_priority(&mut self, port: u32, priority: u32) -> Result<(), i64> {
        let Some(c) = self.chan(port) else {
            return Err(err(errno::EINVAL));
        };
        if self.events.fifo.is_none() {
            return Err(err(errno::ENOSYS));
        }
        if !c.state.usable() {
            return Err(err(errno::EACCES));
        }
        if priority > EVTCHN_FIFO_PRIORITY_MIN {
            return Err(err(errno::EINVAL));
        }
        self.chan_mut(port).priority = priority as u8;
        Ok(())
    }

    /// `evtchn_port_poll`: 1 pending, 0 not, -EINVAL for an invalid or unusable port.
    pub fn evtchn_port_poll(&self, port: u32) -> i64 {
        match self.chan(port) {
            Some(c) if c.state.usable() => i64::from(self.evtchn_is_pending(port)),
            _ => err(errno::EINVAL),
        }
    }

    // ---- the hypercall ----

    /// Reads an argument structure (`copy_from_guest`).
    fn evtchn_read(&mut self, ctx: &Ctx, arg: u64, buf: &mut [u8]) -> Result<(), i64> {
        if !handle_okay(arg) {
            return Err(err(errno::EFAULT));
        }
        self.ram
            .read_virt(ctx.cr3, arg, buf)
            .map_err(|f| self.efault(ctx, "event_channel_op", "argument", f))
    }

    fn evtchn_write(&mut self, ctx: &Ctx, arg: u64, buf: &[u8]) -> i64 {
        match self.ram.write_virt(ctx.cr3, arg, buf) {
            Ok(()) => 0,
            Err(f) => self.efault(ctx, "event_channel_op", "result", f),
        }
    }

    /// `do_event_channel_op(cmd, arg)`.
    pub(crate) fn event_channel_op(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> i64 {
        match self.event_channel_op_inner(ctx, cmd as u32 as u64, arg) {
            Ok(rc) | Err(rc) => rc,
        }
    }

    fn event_channel_op_inner(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> Result<i64, i64> {
        macro_rules! read {
            ($n:expr) => {{
                let mut b = [0u8; $n];
                self.evtchn_read(ctx, arg, &mut b)?;
                b
            }};
        }
        let rc = match cmd {
            EVTCHNOP_ALLOC_UNBOUND => {
                let mut b = read!(ALLOC_UNBOUND_SIZE);
                let port = self.evtchn_alloc_unbound(u16_at(&b, 0), u16_at(&b, 2))?;
                put_u32(&mut b, 4, port);
                self.evtchn_write(ctx, arg, &b)
            }
            EVTCHNOP_BIND_INTERDOMAIN => {
                let mut b = read!(BIND_INTERDOMAIN_SIZE);
                let port = self.evtchn_bind_interdomain(u16_at(&b, 0), u32_at(&b, 4))?;
                put_u32(&mut b, 8, port);
                self.evtchn_write(ctx, arg, &b)
            }
            EVTCHNOP_BIND_VIRQ => {
                let mut b = read!(BIND_VIRQ_SIZE);
                let port = self.evtchn_bind_virq(u32_at(&b, 0), u32_at(&b, 4))?;
                put_u32(&mut b, 8, port);
                self.evtchn_write(ctx, arg, &b)
            }
            EVTCHNOP_BIND_IPI => {
                let mut b = read!(BIND_IPI_SIZE);
                let port = self.evtchn_bind_ipi(u32_at(&b, 0))?;
                put_u32(&mut b, 4, port);
                self.evtchn_write(ctx, arg, &b)
            }
            EVTCHNOP_CLOSE => {
                let b = read!(4);
                self.evtchn_close(u32_at(&b, 0)).map(|()| 0)?
            }
            EVTCHNOP_SEND => {
                let b = read!(4);
                self.evtchn_send(u32_at(&b, 0)).map(|()| 0)?
            }
            EVTCHNOP_STATUS => {
                let mut b = read!(STATUS_SIZE);
                let (st, vcpu, a, c) = self.evtchn_status(u16_at(&b, 0), u32_at(&b, 4))?;
                put_u32(&mut b, 8, st);
                put_u32(&mut b, 12, vcpu);
                match st {
                    EVTCHNSTAT_UNBOUND => b[16..18].copy_from_slice(&(a as u16).to_le_bytes()),
                    EVTCHNSTAT_INTERDOMAIN => {
                        b[16..18].copy_from_slice(&(a as u16).to_le_bytes());
                        put_u32(&mut b, 20, c);
                    }
                    EVTCHNSTAT_VIRQ => put_u32(&mut b, 16, a),
                    _ => {}
                }
                self.evtchn_write(ctx, arg, &b)
            }
            EVTCHNOP_BIND_VCPU => {
                let b = read!(BIND_VCPU_SIZE);
                self.evtchn_bind_vcpu(u32_at(&b, 0), u32_at(&b, 4))
                    .map(|()| 0)?
            }
            EVTCHNOP_UNMASK => {
                let b = read!(4);
                self.evtchn_unmask(u32_at(&b, 0)).map(|()| 0)?
            }
            EVTCHNOP_RESET | EVTCHNOP_RESET_CONT => {
                let b = read!(2);
                self.evtchn_reset(u16_at(&b, 0), cmd == EVTCHNOP_RESET_CONT)
                    .map(|()| 0)?
            }
            EVTCHNOP_INIT_CONTROL => {
                let mut b = read!(INIT_CONTROL_SIZE);
                self.evtchn_fifo_init_control(u64_at(&b, 0), u32_at(&b, 8), u32_at(&b, 12))?;
                put_u32(&mut b, 16, EVTCHN_FIFO_LINK_BITS);
                self.evtchn_write(ctx, arg, &b)
            }
            EVTCHNOP_EXPAND_ARRAY => {
                let b = read!(8);
                self.evtchn_fifo_expand_array(u64_at(&b, 0)).map(|()| 0)?
            }
            EVTCHNOP_SET_PRIORITY => {
                let b = read!(SET_PRIORITY_SIZE);
                self.evtchn_set_priority(u32_at(&b, 0), u32_at(&b, 4))
                    .map(|()| 0)?
            }
            // bind_pirq needs physdev's PIRQ mappings, which we do not model.
            _ => self.unsupported(ctx, hc::EVENT_CHANNEL_OP, Some(cmd)),
        };
        Ok(rc)
    }

    /// `do_event_channel_op_compat(struct evtchn_op *)`.
    pub(crate) fn event_channel_op_compat(&mut self, ctx: &mut Ctx, arg: u64) -> i64 {
        let mut b = [0u8; EVTCHN_OP_SIZE];
        if let Err(rc) = self.evtchn_read(ctx, arg, &mut b) {
            return rc;
        }
        let cmd = u64::from(u32_at(&b, 0));
        match cmd {
            EVTCHNOP_BIND_INTERDOMAIN..=EVTCHNOP_UNMASK if cmd != EVTCHNOP_BIND_PIRQ => {
                self.event_channel_op(ctx, cmd, arg + EVTCHN_OP_U)
            }
            EVTCHNOP_BIND_PIRQ => self.unsupported(ctx, hc::EVENT_CHANNEL_OP_COMPAT, Some(cmd)),
            _ => err(errno::ENOSYS),
        }
    }
}

/// A Hypervisor on plain guest memory (no KVM), built like the fuzzer's fake domain: 4 MiB,
/// frame f mapped at `KBASE + f * 4096` by tables in frames 1-5.
#[cfg(test)]
pub(crate) mod test_support {
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
}

#[cfg(test)]
mod tests {
    use super::test_support::{va, T};
    use super::*;
    use pagetable_validator::abi::hypercall::{EVENT_CHANNEL_OP, EVENT_CHANNEL_OP_COMPAT};

    const ARG: u64 = 40; // frame of the argument structures
    const SELF: u16 = domid::DOMID_SELF;

    fn op(t: &mut T, cmd: u64, bytes: &[u8]) -> (i64, Vec<u8>) {
        t.write(ARG, 0, bytes);
        let rc = t.call(EVENT_CHANNEL_OP, [cmd, va(ARG), 0, 0, 0, 0]);
        let mut out = vec![0u8; bytes.len()];
        t.hv.ram.read_phys(ARG * 4096, &mut out);
        (rc, out)
    }

    fn w32(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn alloc_unbound(t: &mut T, dom: u16, remote: u16) -> (i64, u32) {
        let mut b = vec![0u8; 8];
        b[0..2].copy_from_slice(&dom.to_le_bytes());
        b[2..4].copy_from_slice(&remote.to_le_bytes());
        let (rc, out) = op(t, EVTCHNOP_ALLOC_UNBOUND, &b);
        (rc, u32_at(&out, 4))
    }

    fn status(t: &mut T, port: u32) -> (i64, Vec<u8>) {
        let mut b = vec![0u8; 24];
        b[0..2].copy_from_slice(&SELF.to_le_bytes());
        b[4..8].copy_from_slice(&port.to_le_bytes());
        op(t, EVTCHNOP_STATUS, &b)
    }

    fn simple(t: &mut T, cmd: u64, port: u32) -> i64 {
        op(t, cmd, &port.to_le_bytes()).0
    }

    fn bind_ipi(t: &mut T) -> u32 {
        let (rc, out) = op(t, EVTCHNOP_BIND_IPI, &w32(&[0, 0]));
        assert_eq!(rc, 0);
        u32_at(&out, 4)
    }

    fn si(t: &T) -> u64 {
        t.hv.xen.shared_info_mfn() << 12
    }

    fn pending_2l(t: &T, port: u32) -> bool {
        t.hv.test_bit(si(t) + shinfo::EVTCHN_PENDING, port)
    }

    fn upcall(t: &T) -> u8 {
        t.byte(t.hv.vcpu.pv.vcpu_info_gpa)
    }

    fn clear_upcall(t: &mut T) {
        let vi = t.hv.vcpu.pv.vcpu_info_gpa;
        t.hv.ram.write_phys(vi, &[0]);
        t.hv.ram.write_u64_phys(vi + shinfo::VI_PENDING_SEL, 0);
    }

    #[test]
    fn xtf_domid_probe() {
        // XTF's evtchn_get_domid: alloc_unbound(SELF, SELF), status, close.
        let mut t = T::new();
        let (rc, port) = alloc_unbound(&mut t, SELF, SELF);
        assert_eq!((rc, port), (0, 1), "port 0 is reserved, 1 is first");
        let (rc, st) = status(&mut t, port);
        assert_eq!(rc, 0);
        assert_eq!(u32_at(&st, 8), EVTCHNSTAT_UNBOUND);
        assert_eq!(
            u16_at(&st, 16),
            0,
            "remote DOMID_SELF is stored as our domid 0"
        );
        assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, port), 0);
        assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, port), -22);
        let (rc, st) = status(&mut t, port);
        assert_eq!((rc, u32_at(&st, 8)), (0, EVTCHNSTAT_CLOSED));
        // Port 0 is ECS_RESERVED: closed in status, -EINVAL to close.
        assert_eq!(status(&mut t, 0).0, 0);
        assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, 0), -22);
        // Other domains: -ESRCH; our id 0 is accepted as ourselves.
        assert_eq!(alloc_unbound(&mut t, 1, SELF).0, -3);
        assert_eq!(alloc_unbound(&mut t, 0, 7), (0, 1));
        let (_, st) = status(&mut t, 1);
        assert_eq!(
            u16_at(&st, 16),
            7,
            "any remote domid is recorded (dummy XSM)"
        );
        assert_eq!(t.hv.events.active, 1);
    }

    #[test]
    fn compat_op_16() {
        let mut t = T::new();
        let mut b = vec![0u8; EVTCHN_OP_SIZE];
        b[0..4].copy_from_slice(&(EVTCHNOP_ALLOC_UNBOUND as u32).to_le_bytes());
        b[4..6].copy_from_slice(&SELF.to_le_bytes());
        b[6..8].copy_from_slice(&SELF.to_le_bytes());
        t.write(ARG, 0, &b);
        assert_eq!(t.call(EVENT_CHANNEL_OP_COMPAT, [va(ARG), 0, 0, 0, 0, 0]), 0);
        assert_eq!(t.read_u32(ARG * 4096 + 8), 1);
        b[0..4].copy_from_slice(&(EVTCHNOP_INIT_CONTROL as u32).to_le_bytes());
        t.write(ARG, 0, &b);
        assert_eq!(
            t.call(EVENT_CHANNEL_OP_COMPAT, [va(ARG), 0, 0, 0, 0, 0]),
            -38
        );
    }

    #[test]
    fn bind_virq_rules() {
        let mut t = T::new();
        let bind = |t: &mut T, virq: u32, vcpu: u32| {
            let (rc, out) = op(t, EVTCHNOP_BIND_VIRQ, &w32(&[virq, vcpu, 0]));
            (rc, u32_at(&out, 8))
        };
        assert_eq!(bind(&mut t, VIRQ_TIMER, 0), (0, 1));
        assert_eq!(bind(&mut t, VIRQ_TIMER, 0).0, -17, "-EEXIST");
        assert_eq!(
            bind(&mut t, VIRQ_DEBUG, 1).0,
            -2,
            "per-vCPU VIRQ, no vCPU 1: -ENOENT"
        );
        assert_eq!(
            bind(&mut t, VIRQ_CONSOLE, 1).0,
            -22,
            "global VIRQ on vCPU 1: -EINVAL"
        );
        assert_eq!(bind(&mut t, NR_VIRQS, 0).0, -22);
        assert_eq!(bind(&mut t, u32::MAX, 0).0, -22);
        assert_eq!(bind(&mut t, VIRQ_CONSOLE, 0), (0, 2));
        assert_eq!(bind(&mut t, VIRQ_ARCH_7, 0), (0, 3));
        // A VIRQ port cannot be sent on; status names the VIRQ.
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, 1), -22);
        let (_, st) = status(&mut t, 2);
        assert_eq!(
            (u32_at(&st, 8), u32_at(&st, 16)),
            (EVTCHNSTAT_VIRQ, VIRQ_CONSOLE)
        );
        // bind_vcpu: global VIRQ yes, per-vCPU VIRQ -EINVAL, vCPU 1 -ENOENT.
        assert_eq!(op(&mut t, EVTCHNOP_BIND_VCPU, &w32(&[2, 0])).0, 0);
        assert_eq!(op(&mut t, EVTCHNOP_BIND_VCPU, &w32(&[1, 0])).0, -22);
        assert_eq!(op(&mut t, EVTCHNOP_BIND_VCPU, &w32(&[2, 1])).0, -2);
        // Closing the VIRQ port frees the VIRQ for a new binding.
        assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, 1), 0);
        assert_eq!(bind(&mut t, VIRQ_TIMER, 0), (0, 1));
        // The timer raises it.
        clear_upcall(&mut t);
        t.hv.send_timer_event();
        assert!(pending_2l(&t, 1));
        assert_eq!(upcall(&t), 1);
    }

    #[test]
    fn two_level_send_mask_unmask() {
        let mut t = T::new();
        let p = bind_ipi(&mut t);
        assert_eq!(p, 1);
        clear_upcall(&mut t);
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, p), 0);
        assert!(pending_2l(&t, p));
        let vi = t.hv.vcpu.pv.vcpu_info_gpa;
        assert_eq!(t.hv.ram.read_u64_phys(vi + shinfo::VI_PENDING_SEL), Some(1));
        assert_eq!(upcall(&t), 1);
        // A masked port: pending is set, the selector and upcall are not ...
        let q = bind_ipi(&mut t);
        t.hv.ram
            .write_u64_phys(si(&t) + shinfo::EVTCHN_MASK, 1 << q);
        clear_upcall(&mut t);
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, q), 0);
        assert!(pending_2l(&t, q));
        assert_eq!(upcall(&t), 0);
        // ... until EVTCHNOP_unmask re-raises it (evtchn_2l_unmask).
        assert_eq!(simple(&mut t, EVTCHNOP_UNMASK, q), 0);
        assert_eq!(upcall(&t), 1);
        assert_eq!(
            t.hv.ram.read_u64_phys(si(&t) + shinfo::EVTCHN_MASK),
            Some(0)
        );
        // Unmask of an invalid port: -EINVAL; of a free valid port: 0.
        assert_eq!(simple(&mut t, EVTCHNOP_UNMASK, 64), -22);
        assert_eq!(simple(&mut t, EVTCHNOP_UNMASK, 63), 0);
        // Close clears the pending bit (evtchn_free).
        assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, p), 0);
        assert!(!pending_2l(&t, p));
        // Send on an unbound port is dropped; on a free port -EINVAL.
        let (_, u) = alloc_unbound(&mut t, SELF, SELF);
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, u), 0);
        assert!(!pending_2l(&t, u));
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, 40), -22);
    }

    #[test]
    fn interdomain_loopback() {
        let mut t = T::new();
        let (_, a) = alloc_unbound(&mut t, SELF, SELF);
        let mut b = vec![0u8; 12];
        b[0..2].copy_from_slice(&SELF.to_le_bytes());
        b[4..8].copy_from_slice(&a.to_le_bytes());
        let (rc, out) = op(&mut t, EVTCHNOP_BIND_INTERDOMAIN, &b);
        let l = u32_at(&out, 8);
        assert_eq!((rc, l), (0, 2));
        assert!(pending_2l(&t, l), "Xen raises the new local port");
        assert!(!pending_2l(&t, a));
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, l), 0);
        assert!(pending_2l(&t, a), "send on one end raises the other");
        let (_, st) = status(&mut t, l);
        assert_eq!(u32_at(&st, 8), EVTCHNSTAT_INTERDOMAIN);
        assert_eq!((u16_at(&st, 16), u32_at(&st, 20)), (0, a));
        // Binding again to a now-bound port: -EINVAL (and the port taken for it is released).
        assert_eq!(op(&mut t, EVTCHNOP_BIND_INTERDOMAIN, &b).0, -22);
        assert_eq!(t.hv.events.active, 2);
        // Closing one end leaves the other unbound to us.
        assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, a), 0);
        let (_, st) = status(&mut t, l);
        assert_eq!((u32_at(&st, 8), u16_at(&st, 16)), (EVTCHNSTAT_UNBOUND, 0));
        b[0..2].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(op(&mut t, EVTCHNOP_BIND_INTERDOMAIN, &b).0, -3);
    }

    #[test]
    fn ports_are_bounded_and_buckets_grow() {
        let mut t = T::new();
        assert_eq!(status(&mut t, 63).0, 0);
        assert_eq!(
            status(&mut t, 64).0,
            -22,
            "port 64 is beyond the first bucket"
        );
        let mut last = 0;
        loop {
            let (rc, out) = op(&mut t, EVTCHNOP_BIND_IPI, &w32(&[0, 0]));
            if rc != 0 {
                assert_eq!(rc, -28, "-ENOSPC at the 2-level limit");
                break;
            }
            last = u32_at(&out, 4);
        }
        assert_eq!(last, MAX_2L_PORTS - 1);
        assert_eq!(t.hv.events.chans.len(), MAX_2L_PORTS as usize);
        assert_eq!(t.hv.events.active, MAX_2L_PORTS - 1);
        // reset closes everything.
        assert_eq!(op(&mut t, EVTCHNOP_RESET, &SELF.to_le_bytes()).0, 0);
        assert_eq!(t.hv.events.active, 0);
        assert_eq!(op(&mut t, EVTCHNOP_RESET_CONT, &SELF.to_le_bytes()).0, -16);
        assert_eq!(op(&mut t, EVTCHNOP_RESET, &1u16.to_le_bytes()).0, -3);
        // Hostile pointers: -EFAULT.
        assert_eq!(
            t.call(EVENT_CHANNEL_OP, [EVTCHNOP_SEND, 0, 0, 0, 0, 0]),
            -14
        );
        assert_eq!(
            t.call(
                EVENT_CHANNEL_OP,
                [EVTCHNOP_SEND, 0xffff_8000_0000_0000, 0, 0, 0, 0]
            ),
            -14
        );
        assert_eq!(t.call(EVENT_CHANNEL_OP, [99, va(ARG), 0, 0, 0, 0]), -38);
    }

    const CB: u64 = 50; // control block frame
    const ARRAY: u64 = 51; // event array page

    fn init_fifo(t: &mut T) {
        let mut b = vec![0u8; 24];
        b[0..8].copy_from_slice(&CB.to_le_bytes());
        let (rc, out) = op(t, EVTCHNOP_INIT_CONTROL, &b);
        assert_eq!(rc, 0);
        assert_eq!(u32_at(&out, 16), EVTCHN_FIFO_LINK_BITS);
        let (rc, _) = op(t, EVTCHNOP_EXPAND_ARRAY, &ARRAY.to_le_bytes());
        assert_eq!(rc, 0);
    }

    fn word(t: &T, port: u32) -> u32 {
        t.read_u32(ARRAY * 4096 + u64::from(port) * 4)
    }

    #[test]
    fn fifo_control_rules() {
        let mut t = T::new();
        assert_eq!(
            op(&mut t, EVTCHNOP_EXPAND_ARRAY, &ARRAY.to_le_bytes()).0,
            -95
        );
        assert_eq!(
            op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[64, 0])).0,
            -22,
            "invalid port"
        );
        assert_eq!(
            op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[1, 0])).0,
            -38,
            "2-level: no op"
        );
        let p = bind_ipi(&mut t);
        assert_eq!(
            op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[p, 0])).0,
            -38,
            "2-level"
        );
        let ic = |t: &mut T, gfn: u64, offset: u32, vcpu: u32| {
            let mut b = vec![0u8; 24];
            b[0..8].copy_from_slice(&gfn.to_le_bytes());
            b[8..12].copy_from_slice(&offset.to_le_bytes());
            b[12..16].copy_from_slice(&vcpu.to_le_bytes());
            op(t, EVTCHNOP_INIT_CONTROL, &b).0
        };
        assert_eq!(ic(&mut t, CB, 0, 1), -2);
        assert_eq!(ic(&mut t, CB, 4, 0), -22, "not 8-byte aligned");
        assert_eq!(ic(&mut t, CB, 4096 - 64, 0), -22, "crosses the page");
        assert_eq!(ic(&mut t, 1 << 40, 0, 0), -22, "not a frame of ours");
        assert!(t.hv.events.fifo.is_none());
        assert_eq!(ic(&mut t, CB, 4096 - 72, 0), 0);
        assert_eq!(ic(&mut t, CB, 0, 0), -22, "vCPU 0 has a control block");
        assert_eq!(op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[p, 16])).0, -22);
        assert_eq!(op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[p, 3])).0, 0);
        assert_eq!(
            op(&mut t, EVTCHNOP_SET_PRIORITY, &w32(&[5, 3])).0,
            -13,
            "free: -EACCES"
        );
        // The event array is bounded: 128 pages.
        for i in 0..FIFO_MAX_ARRAY_PAGES as u64 {
            assert_eq!(
                op(&mut t, EVTCHNOP_EXPAND_ARRAY, &(100 + i).to_le_bytes()).0,
                0
            );
        }
        assert_eq!(
            op(&mut t, EVTCHNOP_EXPAND_ARRAY, &ARRAY.to_le_bytes()).0,
            -28
        );
        // reset returns to the 2-level ABI.
        assert_eq!(op(&mut t, EVTCHNOP_RESET, &SELF.to_le_bytes()).0, 0);
        assert!(t.hv.events.fifo.is_none());
    }

    #[test]
    fn fifo_queues_like_xen() {
        let mut t = T::new();
        init_fifo(&mut t);
        let a = bind_ipi(&mut t);
        let b = bind_ipi(&mut t);
        clear_upcall(&mut t);
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, a), 0);
        let (pend, masked, linked) = (1u32 << 31, 1u32 << 30, 1u32 << 29);
        assert_eq!(word(&t, a), pend | linked);
        let cb = CB * 4096;
        let q = u64::from(EVTCHN_FIFO_PRIORITY_DEFAULT);
        assert_eq!(
            t.read_u32(cb + FIFO_CONTROL_BLOCK_HEAD + q * 4),
            a,
            "head of queue 7"
        );
        assert_eq!(t.read_u32(cb), 1 << 7, "ready bit of priority 7");
        assert_eq!(upcall(&t), 1);
        // The second event links behind the first.
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, b), 0);
        assert_eq!(word(&t, a), pend | linked | b);
        assert_eq!(word(&t, b), pend | linked);
        // A port already linked is busy: allocation skips it after close.
        assert_eq!(simple(&mut t, EVTCHNOP_CLOSE, a), 0);
        assert_eq!(word(&t, a) & pend, 0, "close clears P, not L");
        let c = bind_ipi(&mut t);
        assert_eq!(c, b + 1, "linked port {a} is busy");
        // A masked event is pending but not linked; unmask links it.
        t.hv.ram
            .write_phys(ARRAY * 4096 + u64::from(c) * 4, &masked.to_le_bytes());
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, c), 0);
        assert_eq!(word(&t, c), pend | masked);
        assert_eq!(simple(&mut t, EVTCHNOP_UNMASK, c), 0);
        assert_eq!(word(&t, c), pend | linked);
        assert_eq!(word(&t, b) & EVTCHN_FIFO_LINK_MASK, c, "tail b links to c");
        // A port beyond the event array remembers its pending state until the page arrives.
        t.hv.events.chans.resize(2048, Chan::default());
        t.hv.events.chans[1500].state = ChanState::Ipi;
        t.hv.events.active += 1;
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, 1500), 0);
        assert!(t.hv.events.chans[1500].fifo_pending);
        assert_eq!(op(&mut t, EVTCHNOP_EXPAND_ARRAY, &52u64.to_le_bytes()).0, 0);
        assert_eq!(t.read_u32(52 * 4096 + (1500 - 1024) * 4), pend | linked);
    }

    #[test]
    fn fifo_init_carries_2l_pending_state() {
        let mut t = T::new();
        let p = bind_ipi(&mut t);
        assert_eq!(simple(&mut t, EVTCHNOP_SEND, p), 0);
        init_fifo(&mut t);
        assert!(t.hv.events.chans[p as usize].fifo_pending);
        // expand_array re-raised it into the FIFO word.
        assert_eq!(word(&t, p), (1 << 31) | (1 << 29));
    }
}
