//! Every figure of issue 12 against its goal, met or missed, with the facts behind a miss.

use serde::{Deserialize, Serialize};

use crate::guest::{CaseResult, GuestResults};
use crate::inputs::{ExitCase, ValidatorBench, VmmExits};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Goal {
    /// Issue 12's item: 1 validator, 2 VMM exits, 3 guest workloads.
    pub item: u8,
    pub figure: String,
    pub goal: String,
    pub value: String,
    pub met: bool,
    /// The measured facts behind a miss (empty when met).
    pub why: String,
}

fn goal(item: u8, figure: String, goal: &str, value: String, met: bool, why: String) -> Goal {
    Goal {
        item,
        figure,
        goal: goal.into(),
        value,
        met,
        why: if met { String::new() } else { why },
    }
}

pub fn validator(v: &ValidatorBench) -> Vec<Goal> {
    let mut out = Vec::new();
    for s in &v.spaces {
        let (pin, raw, naive, unpin) = (
            s.pin_ns.median,
            s.raw_read_ns.median,
            s.naive_loop_ns.median,
            s.unpin_ns.median,
        );
        // Judged on the medians; the best samples' ratio (what a quiet machine gives) beside.
        let best = |a: &crate::stats::Spread, b: &crate::stats::Spread| {
            format!(" (best samples {:.2}×)", a.low / b.low)
        };
        let r = pin / raw;
        out.push(goal(
            1,
            format!("{}: pin / raw read", s.name),
            "≤ 3×",
            format!("{r:.2}×{}", best(&s.pin_ns, &s.raw_read_ns)),
            r <= 3.0,
            format!("pin {:.2} ms, raw read {:.2} ms", pin / 1e6, raw / 1e6),
        ));
        out.push(goal(
            1,
            format!("{}: pin / naive type-count loop", s.name),
            "< 1× (ahead of the loop)",
            format!("{:.2}×{}", pin / naive, best(&s.pin_ns, &s.naive_loop_ns)),
            pin < naive,
            format!("pin {:.2} ms, naive loop {:.2} ms", pin / 1e6, naive / 1e6),
        ));
        out.push(goal(
            1,
            format!("{}: unpin / pin", s.name),
            "≤ 1×",
            format!("{:.2}×{}", unpin / pin, best(&s.unpin_ns, &s.pin_ns)),
            unpin <= pin,
            format!("unpin {:.2} ms, pin {:.2} ms", unpin / 1e6, pin / 1e6),
        ));
    }
    let m = v.mmu_update_ns_per_entry.median;
    out.push(goal(
        1,
        "batched mmu_update".into(),
        "≤ 15 ns/entry",
        format!(
            "{m:.1} ns/entry (best sample {:.1})",
            v.mmu_update_ns_per_entry.low
        ),
        m <= 15.0,
        format!("{m:.1} ns per entry (median)"),
    ));
    out.push(goal(
        1,
        "frame-table bytes per guest frame".into(),
        "stated",
        format!("{}", v.frame_table_bytes_per_frame),
        true,
        String::new(),
    ));
    out
}

pub fn exits(e: &VmmExits) -> Vec<Goal> {
    e.cases
        .iter()
        .map(|c: &ExitCase| {
            goal(
                2,
                format!("{}: the VMM's own work per exit", c.name),
                "≤ 2 µs",
                format!("{:.2} µs", c.own_ns_per_exit / 1e3),
                c.own_ns_per_exit <= 2000.0,
                format!(
                    "{:.2} µs own + {:.2} µs exit per exit, {:.1} exits per op",
                    c.own_ns_per_exit / 1e3,
                    c.exit_ns_per_exit / 1e3,
                    c.exits_per_op
                ),
            )
        })
        .collect()
}

/// The btree workload's rows, by variant (the manifest's blocks=1700 rows).
pub fn btree<'a>(g: &'a GuestResults, variant: &str) -> Option<&'a CaseResult> {
    g.cases.iter().find(|c| {
        c.cmdline.starts_with("scenario=xfs-btree-walk ")
            && c.cmdline.contains(&format!("variant={variant} "))
            && c.cmdline.contains("blocks=")
    })
}

/// The VMM's guest-only time per vCPU exit, in µs.
pub fn us_per_exit(c: &CaseResult) -> Option<f64> {
    let g = c.vmm.guest_s?.median;
    (c.vmm_counts.exits > 0).then(|| g * 1e6 / c.vmm_counts.exits as f64)
}

/// µs per KVM_RUN inside it and of the VMM's own work after it (the summary's `exit cost:`
/// line).
pub fn split_per_exit(c: &CaseResult) -> Option<(f64, f64)> {
    let n = c.vmm_counts.kvm_runs?.max(1) as f64;
    Some((
        c.vmm_counts.in_kvm_ns? as f64 / n / 1e3,
        c.vmm_counts.own_ns? as f64 / n / 1e3,
    ))
}

/// "(N exits, X µs each[: Y in KVM_RUN, Z the VMM's own])".
fn exits_fact(c: &CaseResult) -> String {
    let split = split_per_exit(c).map_or(String::new(), |(k, o)| {
        format!("; per KVM_RUN {k:.0} inside it, {o:.1} the VMM's own work")
    });
    format!(
        "({} exits, {:.0} µs each{split})",
        c.vmm_counts.exits,
        us_per_exit(c).unwrap_or(0.0)
    )
}

/// The guest's unmap and flush hypercalls: all its vmap-area hypercalls less one map per vmap.
pub fn unmap_flush(c: &CaseResult) -> Option<u64> {
    let k = c.guest_counts.first()?;
    Some(k.get("vmap_hypercalls")?.saturating_sub(*k.get("vmaps")?))
}

pub fn guest(g: &GuestResults) -> Vec<Goal> {
    let mut out = Vec::new();
    for c in &g.cases {
        let (v, x) = (&c.vmm, &c.xen);
        if !v.ok || !x.ok {
            out.push(goal(
                3,
                format!("{}: same verdicts as the manifest on both", c.cmdline),
                "all PASS",
                "failed".into(),
                false,
                [&v.problem, &x.problem]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        if let Some(r) = c.ratio_wall {
            out.push(goal(
                3,
                format!("{}: real Xen in QEMU / VMM, wall", c.cmdline),
                "≥ 3×",
                format!("{r:.2}×"),
                r >= 3.0,
                format!(
                    "VMM {:.3} s {}, real Xen {:.3} s (its boot included)",
                    v.wall_s.median,
                    exits_fact(c),
                    x.wall_s.median
                ),
            ));
        }
        if let (Some(r), Some(vg), Some(xg)) = (c.ratio_guest, v.guest_s, x.guest_s) {
            out.push(goal(
                3,
                format!("{}: real Xen in QEMU / VMM, guest only", c.cmdline),
                "≥ 3×",
                format!("{r:.2}×"),
                r >= 3.0,
                format!(
                    "guest only: VMM {:.3} s {}, real Xen {:.3} s",
                    vg.median,
                    exits_fact(c),
                    xg.median
                ),
            ));
        }
    }
    let eager = btree(g, "eager");
    for name in ["lazy", "vmap-pages"] {
        let (Some(e), Some(o)) = (eager, btree(g, name)) else {
            continue;
        };
        if let (Some(a), Some(b)) = (unmap_flush(e), unmap_flush(o)) {
            let r = a as f64 / b.max(1) as f64;
            out.push(goal(
                3,
                format!("xfs-btree-walk: eager / {name}, guest unmap+flush hypercalls"),
                "≥ 30×",
                format!("{r:.1}× ({a} / {b})"),
                r >= 30.0,
                format!("eager {a}, {name} {b}"),
            ));
        }
        // The flushes are mmuext_op calls (MMUEXT_TLB_FLUSH_*); the unmaps are mmu_updates,
        // which the maps use too, so the VMM's side of the claim is its mmuext_op count.
        let ext = |c: &CaseResult| c.vmm_counts.hypercalls_by_kind.get("mmuext_op").copied();
        let (Some(a), Some(b)) = (ext(e), ext(o)) else {
            continue;
        };
        let r = a as f64 / b.max(1) as f64;
        out.push(goal(
            3,
            format!("xfs-btree-walk: eager / {name}, mmuext_op (flush) hypercalls at the VMM"),
            "≥ 30×",
            format!("{r:.1}× ({a} / {b})"),
            r >= 30.0,
            format!("eager {a}, {name} {b}"),
        ));
    }
    for c in g
        .cases
        .iter()
        .filter(|c| c.cmdline.contains("variant=vmap-pages"))
    {
        let n = c.vmm_counts.refusals;
        out.push(goal(
            3,
            format!("{}: refusals", c.cmdline),
            "0",
            n.to_string(),
            n == 0,
            format!("{n} refusals"),
        ));
    }
    out
}
