//! The FIFO ABI (`event_fifo.c`): event words, queues, and the control operations
//! (init_control, expand_array, set_priority).

use super::{Fifo, FIFO_MAX_ARRAY_PAGES, FIFO_WORDS_PER_PAGE};
use crate::hypercall::{err, Hypervisor};
use pagetable_validator::abi::evtchn::*;
use pagetable_validator::abi::{errno, shinfo};

impl Hypervisor {
    /// `evtchn_fifo_word_from_port`: the guest-physical address of the event word.
    pub(super) fn fifo_word(&self, port: u32) -> Option<u64> {
        let f = self.events.fifo.as_ref()?;
        if port >= f.num_evtchns() {
            return None;
        }
        let page = f.event_array[(port / FIFO_WORDS_PER_PAGE) as usize];
        Some(page + u64::from(port % FIFO_WORDS_PER_PAGE) * 4)
    }

    pub(super) fn fifo_is_busy(&self, port: u32) -> bool {
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
    pub(super) fn fifo_set_pending(&mut self, port: u32) {
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
}
