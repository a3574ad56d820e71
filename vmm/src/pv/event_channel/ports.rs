//! Ports: allocation bookkeeping, and the operations on them (alloc_unbound, bind_*,
//! close, send, status, bind_vcpu, unmask, reset, poll).

use super::{virq_is_global, Chan, ChanState, EVTCHNS_PER_BUCKET, MAX_2L_PORTS};
use crate::hypercall::{err, Hypervisor};
use pagetable_validator::abi::evtchn::*;
use pagetable_validator::abi::{domid, errno};

impl Hypervisor {
    // ---- port bookkeeping ----

    pub(super) fn max_evtchns(&self) -> u32 {
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

    pub(super) fn chan_mut(&mut self, port: u32) -> &mut Chan {
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
    /// `evtchn_port_poll`: 1 pending, 0 not, -EINVAL for an invalid or unusable port.
    pub fn evtchn_port_poll(&self, port: u32) -> i64 {
        match self.chan(port) {
            Some(c) if c.state.usable() => i64::from(self.evtchn_is_pending(port)),
            _ => err(errno::EINVAL),
        }
    }
}
