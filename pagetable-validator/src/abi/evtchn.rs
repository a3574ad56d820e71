//! Event channels (`event_channel.h`): sub-commands, status values, VIRQs, the FIFO ABI,
//! and the argument structures (Xen copies each as a whole).

pub const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
pub const EVTCHNOP_BIND_VIRQ: u64 = 1;
pub const EVTCHNOP_BIND_PIRQ: u64 = 2;
pub const EVTCHNOP_CLOSE: u64 = 3;
pub const EVTCHNOP_SEND: u64 = 4;
pub const EVTCHNOP_STATUS: u64 = 5;
pub const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
pub const EVTCHNOP_BIND_IPI: u64 = 7;
pub const EVTCHNOP_BIND_VCPU: u64 = 8;
pub const EVTCHNOP_UNMASK: u64 = 9;
pub const EVTCHNOP_RESET: u64 = 10;
pub const EVTCHNOP_INIT_CONTROL: u64 = 11;
pub const EVTCHNOP_EXPAND_ARRAY: u64 = 12;
pub const EVTCHNOP_SET_PRIORITY: u64 = 13;
pub const EVTCHNOP_RESET_CONT: u64 = 14;

pub const EVTCHNSTAT_CLOSED: u32 = 0;
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
pub const EVTCHNSTAT_PIRQ: u32 = 3;
pub const EVTCHNSTAT_VIRQ: u32 = 4;
pub const EVTCHNSTAT_IPI: u32 = 5;

pub const VIRQ_TIMER: u32 = 0;
pub const VIRQ_DEBUG: u32 = 1;
pub const VIRQ_CONSOLE: u32 = 2;
pub const VIRQ_DOM_EXC: u32 = 3;
pub const VIRQ_TBUF: u32 = 4;
pub const VIRQ_DEBUGGER: u32 = 6;
pub const VIRQ_XENOPROF: u32 = 7;
pub const VIRQ_CON_RING: u32 = 8;
pub const VIRQ_PCPU_STATE: u32 = 9;
pub const VIRQ_MEM_EVENT: u32 = 10;
pub const VIRQ_ARGO: u32 = 11;
pub const VIRQ_ENOMEM: u32 = 12;
pub const VIRQ_XENPMU: u32 = 13;
pub const VIRQ_ARCH_0: u32 = 16;
pub const VIRQ_ARCH_7: u32 = 23;
pub const NR_VIRQS: u32 = 24;

pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
pub const EVTCHN_FIFO_MAX_QUEUES: u32 = 16;
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << 17;
pub const EVTCHN_FIFO_PENDING: u32 = 31;
pub const EVTCHN_FIFO_MASKED: u32 = 30;
pub const EVTCHN_FIFO_LINKED: u32 = 29;
pub const EVTCHN_FIFO_BUSY: u32 = 28;
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << 17) - 1;
/// `struct evtchn_fifo_control_block`: `ready`, then `head[]` at this offset.
pub const FIFO_CONTROL_BLOCK_SIZE: u64 = 72;
pub const FIFO_CONTROL_BLOCK_HEAD: u64 = 8;

/// `struct evtchn_alloc_unbound`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnAllocUnbound {
    pub dom: u16,
    pub remote_dom: u16,
    pub port: u32,
}

/// `struct evtchn_bind_interdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindInterdomain {
    pub remote_dom: u16,
    pub _pad: u16,
    pub remote_port: u32,
    pub local_port: u32,
}

/// `struct evtchn_bind_virq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVirq {
    pub virq: u32,
    pub vcpu: u32,
    pub port: u32,
}

/// `struct evtchn_bind_ipi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindIpi {
    pub vcpu: u32,
    pub port: u32,
}

/// `struct evtchn_close`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnClose {
    pub port: u32,
}

/// `struct evtchn_send`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSend {
    pub port: u32,
}

/// `struct evtchn_status`. Its union `u` is kept as its 8 bytes (Rust has no safe unions);
/// the member the status names is stored into them: [`EvtchnStatusUnbound`],
/// [`EvtchnStatusInterdomain`], or a `u32` (`u.pirq`, `u.virq`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatus {
    pub dom: u16,
    pub _pad: u16,
    pub port: u32,
    pub status: u32,
    pub vcpu: u32,
    pub u: [u8; 8],
}

/// `evtchn_status.u.unbound`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatusUnbound {
    pub dom: u16,
}

/// `evtchn_status.u.interdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnStatusInterdomain {
    pub dom: u16,
    pub _pad: u16,
    pub port: u32,
}

/// `struct evtchn_bind_vcpu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnBindVcpu {
    pub port: u32,
    pub vcpu: u32,
}

/// `struct evtchn_unmask`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnUnmask {
    pub port: u32,
}

/// `struct evtchn_reset`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnReset {
    pub dom: u16,
}

/// `struct evtchn_init_control`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnInitControl {
    pub control_gfn: u64,
    pub offset: u32,
    pub vcpu: u32,
    pub link_bits: u8,
    pub _pad: [u8; 7],
}

/// `struct evtchn_expand_array`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnExpandArray {
    pub array_gfn: u64,
}

/// `struct evtchn_set_priority`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnSetPriority {
    pub port: u32,
    pub priority: u32,
}

/// `struct evtchn_op` (the old `event_channel_op_compat` argument): `cmd`, then the union of
/// the sub-ops' arguments, which the compat call hands on by address.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EvtchnOp {
    pub cmd: u32,
    pub u: [u32; 6],
}
