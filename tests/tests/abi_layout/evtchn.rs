//! Event channels (event_channel.h, xen.h VIRQs): sub-commands, status values, VIRQs, the
//! FIFO ABI and the argument structures.

use super::{field_size, size_check, Check};
use pagetable_validator::abi::evtchn::{
    self, EvtchnAllocUnbound, EvtchnBindInterdomain, EvtchnBindIpi, EvtchnBindVcpu, EvtchnBindVirq,
    EvtchnClose, EvtchnExpandArray, EvtchnInitControl, EvtchnOp, EvtchnReset, EvtchnSend,
    EvtchnSetPriority, EvtchnStatus, EvtchnStatusInterdomain, EvtchnStatusUnbound, EvtchnUnmask,
};
use std::mem::{offset_of, size_of};

pub fn constant_checks() -> Vec<Check> {
    consts! {
        evtchn::EVTCHNOP_BIND_INTERDOMAIN => "EVTCHNOP_bind_interdomain",
        evtchn::EVTCHNOP_BIND_VIRQ => "EVTCHNOP_bind_virq",
        evtchn::EVTCHNOP_BIND_PIRQ => "EVTCHNOP_bind_pirq",
        evtchn::EVTCHNOP_CLOSE => "EVTCHNOP_close",
        evtchn::EVTCHNOP_SEND => "EVTCHNOP_send",
        evtchn::EVTCHNOP_STATUS => "EVTCHNOP_status",
        evtchn::EVTCHNOP_ALLOC_UNBOUND => "EVTCHNOP_alloc_unbound",
        evtchn::EVTCHNOP_BIND_IPI => "EVTCHNOP_bind_ipi",
        evtchn::EVTCHNOP_BIND_VCPU => "EVTCHNOP_bind_vcpu",
        evtchn::EVTCHNOP_UNMASK => "EVTCHNOP_unmask",
        evtchn::EVTCHNOP_RESET => "EVTCHNOP_reset",
        evtchn::EVTCHNOP_INIT_CONTROL => "EVTCHNOP_init_control",
        evtchn::EVTCHNOP_EXPAND_ARRAY => "EVTCHNOP_expand_array",
        evtchn::EVTCHNOP_SET_PRIORITY => "EVTCHNOP_set_priority",
        evtchn::EVTCHNSTAT_CLOSED => "EVTCHNSTAT_closed",
        evtchn::EVTCHNSTAT_UNBOUND => "EVTCHNSTAT_unbound",
        evtchn::EVTCHNSTAT_INTERDOMAIN => "EVTCHNSTAT_interdomain",
        evtchn::EVTCHNSTAT_PIRQ => "EVTCHNSTAT_pirq",
        evtchn::EVTCHNSTAT_VIRQ => "EVTCHNSTAT_virq",
        evtchn::EVTCHNSTAT_IPI => "EVTCHNSTAT_ipi",
        evtchn::VIRQ_TIMER => "VIRQ_TIMER",
        evtchn::VIRQ_DEBUG => "VIRQ_DEBUG",
        evtchn::VIRQ_CONSOLE => "VIRQ_CONSOLE",
        evtchn::VIRQ_DOM_EXC => "VIRQ_DOM_EXC",
        evtchn::VIRQ_TBUF => "VIRQ_TBUF",
        evtchn::VIRQ_DEBUGGER => "VIRQ_DEBUGGER",
        evtchn::VIRQ_XENOPROF => "VIRQ_XENOPROF",
        evtchn::VIRQ_CON_RING => "VIRQ_CON_RING",
        evtchn::VIRQ_PCPU_STATE => "VIRQ_PCPU_STATE",
        evtchn::VIRQ_MEM_EVENT => "VIRQ_MEM_EVENT",
        evtchn::VIRQ_ARGO => "VIRQ_ARGO",
        evtchn::VIRQ_ENOMEM => "VIRQ_ENOMEM",
        evtchn::VIRQ_XENPMU => "VIRQ_XENPMU",
        evtchn::VIRQ_ARCH_0 => "VIRQ_ARCH_0",
        evtchn::VIRQ_ARCH_7 => "VIRQ_ARCH_7",
        evtchn::NR_VIRQS => "NR_VIRQS",
        evtchn::EVTCHN_FIFO_PRIORITY_MAX => "EVTCHN_FIFO_PRIORITY_MAX",
        evtchn::EVTCHN_FIFO_PRIORITY_DEFAULT => "EVTCHN_FIFO_PRIORITY_DEFAULT",
        evtchn::EVTCHN_FIFO_PRIORITY_MIN => "EVTCHN_FIFO_PRIORITY_MIN",
        evtchn::EVTCHN_FIFO_MAX_QUEUES => "EVTCHN_FIFO_MAX_QUEUES",
        evtchn::EVTCHN_FIFO_LINK_BITS => "EVTCHN_FIFO_LINK_BITS",
        evtchn::EVTCHN_FIFO_NR_CHANNELS => "EVTCHN_FIFO_NR_CHANNELS",
        evtchn::EVTCHN_FIFO_PENDING => "EVTCHN_FIFO_PENDING",
        evtchn::EVTCHN_FIFO_MASKED => "EVTCHN_FIFO_MASKED",
        evtchn::EVTCHN_FIFO_LINKED => "EVTCHN_FIFO_LINKED",
        evtchn::EVTCHN_FIFO_BUSY => "EVTCHN_FIFO_BUSY",
        evtchn::EVTCHN_FIFO_LINK_MASK => "EVTCHN_FIFO_LINK_MASK",
        evtchn::FIFO_CONTROL_BLOCK_SIZE => "sizeof(struct evtchn_fifo_control_block)",
        evtchn::FIFO_CONTROL_BLOCK_HEAD => "offsetof(struct evtchn_fifo_control_block, head)",
    }
}

pub fn layout_checks() -> Vec<Check> {
    const AU: &str = "struct evtchn_alloc_unbound";
    const BI: &str = "struct evtchn_bind_interdomain";
    const BV: &str = "struct evtchn_bind_virq";
    const IPI: &str = "struct evtchn_bind_ipi";
    const CLOSE: &str = "struct evtchn_close";
    const SEND: &str = "struct evtchn_send";
    const ST: &str = "struct evtchn_status";
    // The union members of evtchn_status, as types of their own (offsets within `u`).
    const UNB: &str = "__typeof__(((struct evtchn_status *)0)->u.unbound)";
    const INTER: &str = "__typeof__(((struct evtchn_status *)0)->u.interdomain)";
    const BVCPU: &str = "struct evtchn_bind_vcpu";
    const UNMASK: &str = "struct evtchn_unmask";
    const RESET: &str = "struct evtchn_reset";
    const IC: &str = "struct evtchn_init_control";
    const EA: &str = "struct evtchn_expand_array";
    const SP: &str = "struct evtchn_set_priority";
    const OP: &str = "struct evtchn_op";
    let mut v = vec![
        size_check("EvtchnAllocUnbound", AU, size_of::<EvtchnAllocUnbound>()),
        size_check(
            "EvtchnBindInterdomain",
            BI,
            size_of::<EvtchnBindInterdomain>(),
        ),
        size_check("EvtchnBindVirq", BV, size_of::<EvtchnBindVirq>()),
        size_check("EvtchnBindIpi", IPI, size_of::<EvtchnBindIpi>()),
        size_check("EvtchnClose", CLOSE, size_of::<EvtchnClose>()),
        size_check("EvtchnSend", SEND, size_of::<EvtchnSend>()),
        size_check("EvtchnStatus", ST, size_of::<EvtchnStatus>()),
        size_check("EvtchnStatusUnbound", UNB, size_of::<EvtchnStatusUnbound>()),
        size_check(
            "EvtchnStatusInterdomain",
            INTER,
            size_of::<EvtchnStatusInterdomain>(),
        ),
        size_check("EvtchnBindVcpu", BVCPU, size_of::<EvtchnBindVcpu>()),
        size_check("EvtchnUnmask", UNMASK, size_of::<EvtchnUnmask>()),
        size_check("EvtchnReset", RESET, size_of::<EvtchnReset>()),
        size_check("EvtchnInitControl", IC, size_of::<EvtchnInitControl>()),
        size_check("EvtchnExpandArray", EA, size_of::<EvtchnExpandArray>()),
        size_check("EvtchnSetPriority", SP, size_of::<EvtchnSetPriority>()),
        size_check("EvtchnOp", OP, size_of::<EvtchnOp>()),
    ];
    v.extend(field!(EvtchnAllocUnbound, dom, AU, "dom"));
    v.extend(field!(EvtchnAllocUnbound, remote_dom, AU, "remote_dom"));
    v.extend(field!(EvtchnAllocUnbound, port, AU, "port"));
    v.extend(field!(EvtchnBindInterdomain, remote_dom, BI, "remote_dom"));
    v.extend(pad!(
        EvtchnBindInterdomain,
        _pad,
        BI,
        "remote_dom",
        "remote_port"
    ));
    v.extend(field!(
        EvtchnBindInterdomain,
        remote_port,
        BI,
        "remote_port"
    ));
    v.extend(field!(EvtchnBindInterdomain, local_port, BI, "local_port"));
    v.extend(field!(EvtchnBindVirq, virq, BV, "virq"));
    v.extend(field!(EvtchnBindVirq, vcpu, BV, "vcpu"));
    v.extend(field!(EvtchnBindVirq, port, BV, "port"));
    v.extend(field!(EvtchnBindIpi, vcpu, IPI, "vcpu"));
    v.extend(field!(EvtchnBindIpi, port, IPI, "port"));
    v.extend(field!(EvtchnClose, port, CLOSE, "port"));
    v.extend(field!(EvtchnSend, port, SEND, "port"));
    v.extend(field!(EvtchnStatus, dom, ST, "dom"));
    v.extend(pad!(EvtchnStatus, _pad, ST, "dom", "port"));
    v.extend(field!(EvtchnStatus, port, ST, "port"));
    v.extend(field!(EvtchnStatus, status, ST, "status"));
    v.extend(field!(EvtchnStatus, vcpu, ST, "vcpu"));
    v.extend(field!(EvtchnStatus, u, ST, "u"));
    // Every member starts at `u`; u.pirq and u.virq are the u32 stored there.
    for member in ["u.unbound", "u.interdomain", "u.pirq", "u.virq"] {
        v.push(Check {
            ours: format!("EvtchnStatus.u@offset (as {member})"),
            c_expr: format!("offsetof({ST}, {member})"),
            value: offset_of!(EvtchnStatus, u) as i128,
        });
    }
    for member in ["u.pirq", "u.virq"] {
        v.push(Check {
            ours: format!("EvtchnStatus.u as u32@size (as {member})"),
            c_expr: format!("sizeof((({ST} *)0)->{member})"),
            value: size_of::<u32>() as i128,
        });
    }
    v.extend(field!(EvtchnStatusUnbound, dom, UNB, "dom"));
    v.extend(field!(EvtchnStatusInterdomain, dom, INTER, "dom"));
    v.extend(pad!(EvtchnStatusInterdomain, _pad, INTER, "dom", "port"));
    v.extend(field!(EvtchnStatusInterdomain, port, INTER, "port"));
    v.extend(field!(EvtchnBindVcpu, port, BVCPU, "port"));
    v.extend(field!(EvtchnBindVcpu, vcpu, BVCPU, "vcpu"));
    v.extend(field!(EvtchnUnmask, port, UNMASK, "port"));
    v.extend(field!(EvtchnReset, dom, RESET, "dom"));
    v.extend(field!(EvtchnInitControl, control_gfn, IC, "control_gfn"));
    v.extend(field!(EvtchnInitControl, offset, IC, "offset"));
    v.extend(field!(EvtchnInitControl, vcpu, IC, "vcpu"));
    v.extend(field!(EvtchnInitControl, link_bits, IC, "link_bits"));
    v.extend(field!(EvtchnInitControl, _pad, IC, "_pad"));
    v.extend(field!(EvtchnExpandArray, array_gfn, EA, "array_gfn"));
    v.extend(field!(EvtchnSetPriority, port, SP, "port"));
    v.extend(field!(EvtchnSetPriority, priority, SP, "priority"));
    v.extend(field!(EvtchnOp, cmd, OP, "cmd"));
    v.extend(field!(EvtchnOp, u, OP, "u"));
    v
}
