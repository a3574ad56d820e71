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
//!
//! The files: this one holds the types, the state and the `event_channel_op` dispatch;
//! `guest_memory` the bit operations on guest memory and the frame checks; `ports` port
//! allocation and the operations (bind/close/send/status/...); `port_ops` the per-ABI port
//! ops, with the 2-level ABI; `fifo` the FIFO ABI.
//! a pagetable meanwhile is never written.
use crate::guest_abi::{member, set_member};
use crate::hypercall::{err, handle_okay, Ctx, Hypervisor};
use pagetable_validator::abi::evtchn::*;
use pagetable_validator::abi::{errno, hypercall as hc};
use std::mem::offset_of;
use vm_memory::ByteValued;

mod fifo;
mod guest_memory;
mod port_ops;
mod ports;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

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

impl Hypervisor {
    // ---- the hypercall ----

    /// Reads an argument structure (an abi type) whole (`copy_from_guest`).
    fn evtchn_read<T: ByteValued + Default>(&mut self, ctx: &Ctx, arg: u64) -> Result<T, i64> {
        if !handle_okay(arg) {
            return Err(err(errno::EFAULT));
        }
        self.read_arg(ctx, arg, "event_channel_op", "argument")
    }

    /// Writes an argument structure back whole (`copy_to_guest`), through `write_guest` like
    /// every other hypercall's result (never into a validated pagetable, and logged).
    fn evtchn_write<T: ByteValued>(&mut self, ctx: &Ctx, arg: u64, op: &T) -> i64 {
        match self.write_arg(ctx, arg, op.as_slice(), "event_channel_op", "result") {
            Ok(()) => 0,
            Err(rc) => rc,
        }
    }

    /// `do_event_channel_op(cmd, arg)`.
    pub(crate) fn event_channel_op(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> i64 {
        match self.event_channel_op_inner(ctx, cmd as u32 as u64, arg) {
            Ok(rc) | Err(rc) => rc,
        }
    }

    fn event_channel_op_inner(&mut self, ctx: &mut Ctx, cmd: u64, arg: u64) -> Result<i64, i64> {
        let rc = match cmd {
            EVTCHNOP_ALLOC_UNBOUND => {
                let mut op: EvtchnAllocUnbound = self.evtchn_read(ctx, arg)?;
                op.port = self.evtchn_alloc_unbound(op.dom, op.remote_dom)?;
                self.evtchn_write(ctx, arg, &op)
            }
            EVTCHNOP_BIND_INTERDOMAIN => {
                let mut op: EvtchnBindInterdomain = self.evtchn_read(ctx, arg)?;
                op.local_port = self.evtchn_bind_interdomain(op.remote_dom, op.remote_port)?;
                self.evtchn_write(ctx, arg, &op)
            }
            EVTCHNOP_BIND_VIRQ => {
                let mut op: EvtchnBindVirq = self.evtchn_read(ctx, arg)?;
                op.port = self.evtchn_bind_virq(op.virq, op.vcpu)?;
                self.evtchn_write(ctx, arg, &op)
            }
            EVTCHNOP_BIND_IPI => {
                let mut op: EvtchnBindIpi = self.evtchn_read(ctx, arg)?;
                op.port = self.evtchn_bind_ipi(op.vcpu)?;
                self.evtchn_write(ctx, arg, &op)
            }
            EVTCHNOP_CLOSE => {
                let op: EvtchnClose = self.evtchn_read(ctx, arg)?;
                self.evtchn_close(op.port).map(|()| 0)?
            }
            EVTCHNOP_SEND => {
                let op: EvtchnSend = self.evtchn_read(ctx, arg)?;
                self.evtchn_send(op.port).map(|()| 0)?
            }
            EVTCHNOP_STATUS => {
                let mut op: EvtchnStatus = self.evtchn_read(ctx, arg)?;
                let (st, vcpu, a, c) = self.evtchn_status(op.dom, op.port)?;
                op.status = st;
                op.vcpu = vcpu;
                // The union member the status names; the rest of `u` stays as read.
                match st {
                    EVTCHNSTAT_UNBOUND => {
                        set_member(&mut op.u, &EvtchnStatusUnbound { dom: a as u16 });
                    }
                    EVTCHNSTAT_INTERDOMAIN => {
                        let mut m: EvtchnStatusInterdomain = member(&op.u);
                        (m.dom, m.port) = (a as u16, c);
                        set_member(&mut op.u, &m);
                    }
                    EVTCHNSTAT_VIRQ => set_member(&mut op.u, &a),
                    _ => {}
                }
                self.evtchn_write(ctx, arg, &op)
            }
            EVTCHNOP_BIND_VCPU => {
                let op: EvtchnBindVcpu = self.evtchn_read(ctx, arg)?;
                self.evtchn_bind_vcpu(op.port, op.vcpu).map(|()| 0)?
            }
            EVTCHNOP_UNMASK => {
                let op: EvtchnUnmask = self.evtchn_read(ctx, arg)?;
                self.evtchn_unmask(op.port).map(|()| 0)?
            }
            EVTCHNOP_RESET | EVTCHNOP_RESET_CONT => {
                let op: EvtchnReset = self.evtchn_read(ctx, arg)?;
                self.evtchn_reset(op.dom, cmd == EVTCHNOP_RESET_CONT)
                    .map(|()| 0)?
            }
            EVTCHNOP_INIT_CONTROL => {
                let mut op: EvtchnInitControl = self.evtchn_read(ctx, arg)?;
                self.evtchn_fifo_init_control(op.control_gfn, op.offset, op.vcpu)?;
                op.link_bits = EVTCHN_FIFO_LINK_BITS as u8;
                self.evtchn_write(ctx, arg, &op)
            }
            EVTCHNOP_EXPAND_ARRAY => {
                let op: EvtchnExpandArray = self.evtchn_read(ctx, arg)?;
                self.evtchn_fifo_expand_array(op.array_gfn).map(|()| 0)?
            }
            EVTCHNOP_SET_PRIORITY => {
                let op: EvtchnSetPriority = self.evtchn_read(ctx, arg)?;
                self.evtchn_set_priority(op.port, op.priority).map(|()| 0)?
            }
            // bind_pirq needs physdev's PIRQ mappings, which we do not model.
            _ => self.unsupported(ctx, hc::EVENT_CHANNEL_OP, Some(cmd)),
        };
        Ok(rc)
    }

    /// `do_event_channel_op_compat(struct evtchn_op *)`.
    pub(crate) fn event_channel_op_compat(&mut self, ctx: &mut Ctx, arg: u64) -> i64 {
        let op: EvtchnOp = match self.evtchn_read(ctx, arg) {
            Ok(op) => op,
            Err(rc) => return rc,
        };
        let cmd = u64::from(op.cmd);
        match cmd {
            EVTCHNOP_BIND_INTERDOMAIN..=EVTCHNOP_UNMASK if cmd != EVTCHNOP_BIND_PIRQ => {
                self.event_channel_op(ctx, cmd, arg + offset_of!(EvtchnOp, u) as u64)
            }
            EVTCHNOP_BIND_PIRQ => self.unsupported(ctx, hc::EVENT_CHANNEL_OP_COMPAT, Some(cmd)),
            _ => err(errno::ENOSYS),
        }
    }
}
