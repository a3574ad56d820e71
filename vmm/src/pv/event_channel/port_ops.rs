//! The port ops, dispatching to the FIFO ABI once the guest initialised it; the 2-level
//! ABI's bitmaps live in shared_info and vcpu_info.

use super::MAX_2L_PORTS;
use crate::hypercall::Hypervisor;
use pagetable_validator::abi::evtchn::*;
use pagetable_validator::abi::shinfo;

impl Hypervisor {
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

    pub(super) fn evtchn_port_clear_pending(&mut self, port: u32) {
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

    pub(super) fn evtchn_port_unmask(&mut self, port: u32) {
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

    pub(super) fn evtchn_is_pending(&self, port: u32) -> bool {
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
}
