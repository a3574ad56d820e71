//! `bench/results.json`, `bench/REPORT.md` and the charts, from whatever inputs exist.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use crate::charts::{self, Bars, Goal as Mark, Series};
use crate::goals::{self, Goal};
use crate::guest::GuestResults;
use crate::inputs::{Input, ValidatorBench, VmmExits};
use crate::machine::Machine;
use crate::stats::Spread;
use crate::Error;

pub struct Inputs {
    pub machine: Machine,
    pub validator: Input<ValidatorBench>,
    pub exits: Input<VmmExits>,
    /// Whether scripts/bench-exits.sh (the producer of vmm_exits.json) exists.
    pub exits_script: bool,
    pub guest: Input<GuestResults>,
}

fn missing<T>(i: &Input<T>) -> String {
    match i {
        Input::Missing(why) => why.clone(),
        Input::Read(..) => String::new(),
    }
}

/// Million entries per second for `entries` in `ns` (a spread inverts: low time = high rate).
fn rate(entries: u64, ns: &Spread) -> Option<Spread> {
    let r = |t: f64| (t > 0.0).then(|| entries as f64 / t * 1e3);
    Some(Spread {
        low: r(ns.high)?,
        median: r(ns.median)?,
        high: r(ns.low)?,
    })
}

fn pin_chart(dir: &Path, v: &ValidatorBench) -> Result<(), Error> {
    let groups = v.spaces.iter().map(|s| s.name.clone()).collect();
    let series = |name: &str, f: fn(&crate::inputs::Space) -> &Spread| Series {
        name: name.into(),
        values: v.spaces.iter().map(|s| rate(s.entries, f(s))).collect(),
    };
    charts::bars(
        &dir.join("pin.svg"),
        &Bars {
            title: "Validator: entries per second (pin, unpin, naive loop, raw read)",
            unit: "million entries / s (log)",
            groups,
            series: vec![
                series("pin", |s| &s.pin_ns),
                series("unpin", |s| &s.unpin_ns),
                series("naive type-count loop", |s| &s.naive_loop_ns),
                series("raw read", |s| &s.raw_read_ns),
            ],
            goals: v
                .spaces
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    Some(Mark {
                        group: i,
                        value: rate(s.entries, &s.raw_read_ns)?.median / 3.0,
                    })
                })
                .collect(),
            goal_label: "goal: pin at least raw read / 3",
            horizontal: false,
        },
    )
}

fn exits_chart(dir: &Path, e: &VmmExits) -> Result<(), Error> {
    let one = |x: f64| {
        Some(Spread {
            low: x,
            median: x,
            high: x,
        })
    };
    charts::bars(
        &dir.join("exits.svg"),
        &Bars {
            title: "VMM: cost per exit, its own work and the exit itself",
            unit: "ns per exit (log)",
            groups: e.cases.iter().map(|c| c.name.clone()).collect(),
            series: vec![
                Series {
                    name: "VMM's own work".into(),
                    values: e.cases.iter().map(|c| one(c.own_ns_per_exit)).collect(),
                },
                Series {
                    name: "exit (KVM + hardware)".into(),
                    values: e.cases.iter().map(|c| one(c.exit_ns_per_exit)).collect(),
                },
            ],
            goals: (0..e.cases.len())
                .map(|i| Mark {
                    group: i,
                    value: 2000.0,
                })
                .collect(),
            goal_label: "goal: own work at most 2 µs",
            horizontal: false,
        },
    )
}

fn wall_chart(dir: &Path, g: &GuestResults) -> Result<(), Error> {
    let side = |f: fn(&crate::guest::CaseResult) -> Option<Spread>| -> Vec<Option<Spread>> {
        g.cases.iter().map(f).collect()
    };
    charts::bars(
        &dir.join("wall.svg"),
        &Bars {
            title: "Wall time per scenario: our VMM (KVM) vs real Xen 4.17 in QEMU",
            unit: "seconds (log)",
            groups: g
                .cases
                .iter()
                .map(|c| c.cmdline.replace("scenario=", ""))
                .collect(),
            series: vec![
                Series {
                    name: "VMM, whole run".into(),
                    values: side(|c| Some(c.vmm.wall_s)),
                },
                Series {
                    name: "real Xen in QEMU, whole run (Xen's boot included)".into(),
                    values: side(|c| Some(c.xen.wall_s)),
                },
                Series {
                    name: "real Xen, guest only".into(),
                    values: side(|c| c.xen.guest_s),
                },
            ],
            // The goal: the VMM's whole run at most a third of real Xen's.
            goals: g
                .cases
                .iter()
                .enumerate()
                .map(|(i, c)| Mark {
                    group: i,
                    value: c.xen.wall_s.median / 3.0,
                })
                .collect(),
            goal_label: "goal: VMM at most real Xen / 3",
            horizontal: true,
        },
    )
}

/// Per 1000 visits of the btree workload, by variant.
fn per_visit(g: &GuestResults) -> Vec<(String, [Option<f64>; 5])> {
    ["eager", "lazy", "vmap-pages"]
        .iter()
        .filter_map(|v| {
            let c = goals::btree(g, v)?;
            let visits = *c.work.as_ref()?.get("visits")? as f64;
            let k = c.guest_counts.first();
            let per = |x: Option<u64>| x.map(|x| x as f64 * 1000.0 / visits.max(1.0));
            let vc = &c.vmm_counts;
            Some((
                v.to_string(),
                [
                    per(Some(vc.hypercalls)),
                    per(Some(vc.exits)),
                    per(goals::unmap_flush(c)),
                    per(k.and_then(|k| k.get("flush_hypercalls").copied())),
                    per(Some(vc.cr3_reloads)),
                ],
            ))
        })
        .collect()
}

const PER_VISIT: [&str; 5] = [
    "hypercalls at the VMM",
    "vCPU exits",
    "guest unmap+flush hypercalls",
    "guest flush hypercalls",
    "CR3 reloads by the VMM",
];

fn hypercalls_chart(dir: &Path, g: &GuestResults) -> Result<(), Error> {
    let rows = per_visit(g);
    let one = |x: Option<f64>| {
        x.map(|x| Spread {
            low: x,
            median: x,
            high: x,
        })
    };
    charts::bars(
        &dir.join("hypercalls.svg"),
        &Bars {
            title: "xfs-btree-walk: per 1000 block visits, by variant",
            unit: "per 1000 visits (log)",
            groups: rows.iter().map(|r| r.0.clone()).collect(),
            series: PER_VISIT
                .iter()
                .enumerate()
                .map(|(j, name)| Series {
                    name: (*name).into(),
                    values: rows.iter().map(|r| one(r.1[j])).collect(),
                })
                .collect(),
            goals: Vec::new(),
            goal_label: "",
            horizontal: false,
        },
    )
}

fn met(m: bool) -> &'static str {
    if m {
        "met"
    } else {
        "**missed**"
    }
}

fn goal_table(md: &mut String, goals: &[Goal]) {
    md.push_str("| figure | goal | measured | | facts behind a miss |\n|---|---|---|---|---|\n");
    for g in goals {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} |",
            g.figure,
            g.goal,
            g.value,
            met(g.met),
            g.why
        );
    }
    md.push('\n');
}

fn ms(s: &Spread) -> String {
    format!(
        "{:.3} [{:.3}–{:.3}]",
        s.median / 1e6,
        s.low / 1e6,
        s.high / 1e6
    )
}

fn secs(s: Option<Spread>) -> String {
    s.map_or("–".into(), |s| format!("{:.3}", s.median))
}

fn validator_md(md: &mut String, inp: &Inputs) {
    md.push_str("## 1. The validator (criterion, `cargo bench -p pagetable-validator --bench validate`)\n\n");
    let Some(v) = inp.validator.get() else {
        let _ = writeln!(md, "Not measured: {}.\n", missing(&inp.validator));
        return;
    };
    let _ = writeln!(
        md,
        "Figures of {} (`validator.json`).\n",
        inp.validator.date()
    );
    md.push_str("![pin throughput](pin.svg)\n\n");
    md.push_str("Median [best–worst] of criterion's samples, ms per whole address space. The goals are judged on the medians.\n\n");
    md.push_str("| space | entries | pin | unpin | naive type-count loop | raw read |\n|---|---|---|---|---|---|\n");
    for s in &v.spaces {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            s.name,
            s.entries,
            ms(&s.pin_ns),
            ms(&s.unpin_ns),
            ms(&s.naive_loop_ns),
            ms(&s.raw_read_ns)
        );
    }
    let m = &v.mmu_update_ns_per_entry;
    let fast = v
        .mmu_update_fast_path_ns_per_entry
        .map_or(String::new(), |f| {
            format!(
                " (all on the fast path: {:.1} [{:.1}–{:.1}])",
                f.median, f.low, f.high
            )
        });
    let _ = writeln!(
        md,
        "\nBatched mmu_update: {:.1} [{:.1}–{:.1}] ns per entry{fast}. Frame table: {} bytes per guest frame.\n",
        m.median, m.low, m.high, v.frame_table_bytes_per_frame
    );
    goal_table(md, &goals::validator(v));
}

fn exits_md(md: &mut String, inp: &Inputs) {
    md.push_str("## 2. The VMM's cost per exit (`scripts/bench-exits.sh`)\n\n");
    let Some(e) = inp.exits.get() else {
        let script = if inp.exits_script {
            ""
        } else {
            " (scripts/bench-exits.sh does not exist yet)"
        };
        let _ = writeln!(md, "Not measured: {}{script}.\n", missing(&inp.exits));
        return;
    };
    let _ = writeln!(md, "Figures of {} (`vmm_exits.json`).\n", inp.exits.date());
    md.push_str("![exit cost](exits.svg)\n\n");
    md.push_str("| case | ops | exits/op | total ns/op | own ns/exit | exit ns/exit |\n|---|---|---|---|---|---|\n");
    for c in &e.cases {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | {:.0} | {:.0} | {:.0} |",
            c.name, c.ops, c.exits_per_op, c.total_ns_per_op, c.own_ns_per_exit, c.exit_ns_per_exit
        );
    }
    md.push('\n');
    goal_table(md, &goals::exits(e));
}

fn guest_md(md: &mut String, inp: &Inputs) {
    md.push_str("## 3. Guest workloads: our VMM vs real Xen 4.17 in QEMU\n\n");
    let Some(g) = inp.guest.get() else {
        let _ = writeln!(md, "Not measured: {}.\n", missing(&inp.guest));
        return;
    };
    let _ = writeln!(
        md,
        "Every `matrix` row of guest/scenarios.manifest, {} repetition(s) each, one run at a time \
         (VMM, then real Xen, alternating), measured {}. Medians in seconds. **Real Xen's whole \
         run includes its own boot in QEMU (TCG, about 1 s)**; its guest-only time is read from \
         Xen's console timestamps (`console_timestamps=boot`): from `*** Serial input to DOM0` \
         (the end of Xen's boot, dom0 built) to `Hardware Dom0 halted`. The VMM's guest-only \
         time is its summary's wall time less its setup (kernel load, domain build, KVM VM).\n",
        g.reps, g.date
    );
    if let ([a, ..], [b, ..]) = (&g.load_before[..], &g.load_after[..]) {
        let _ = writeln!(
            md,
            "Load average (1 min) {a:.2} before these runs, {b:.2} after.\n"
        );
    }
    md.push_str("![wall time](wall.svg)\n\n");
    md.push_str("| scenario | VMM | real Xen | ratio | VMM guest | Xen guest | ratio | exits | µs per exit | µs per KVM_RUN: inside / VMM's own | hypercalls | refusals | verdicts |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for c in &g.cases {
        let r = |x: Option<f64>| x.map_or("–".into(), |x| format!("{x:.2}×"));
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.cmdline,
            secs(Some(c.vmm.wall_s)),
            secs(Some(c.xen.wall_s)),
            r(c.ratio_wall),
            secs(c.vmm.guest_s),
            secs(c.xen.guest_s),
            r(c.ratio_guest),
            c.vmm_counts.exits,
            goals::us_per_exit(c).map_or("–".into(), |u| format!("{u:.0}")),
            goals::split_per_exit(c).map_or("–".into(), |(k, o)| format!("{k:.0} / {o:.1}")),
            c.vmm_counts.hypercalls,
            c.vmm_counts.refusals,
            match (c.vmm.ok && c.xen.ok, c.vmm.verdicts.is_empty()) {
                (false, _) => "**FAILED**".into(),
                (true, true) => "– (none printed)".into(),
                (true, false) => c.vmm.verdicts.join(", "),
            }
        );
    }
    md.push_str("\nµs per exit: the VMM's guest-only time over its vCPU exits (every exit's KVM round trip and the VMM's work, and the guest's own run between exits); then the summary's `exit cost:` line per KVM_RUN (the exits and the ring-0 trampoline's runs): time inside KVM_RUN (the guest, the exit, host page faults) and the VMM's own work between two KVM_RUNs. The guest-only time also holds what happens outside both (the first KVM_RUN's VM setup, console output). On this host a port-I/O exit alone costs ~13–25 µs and the first touch of a guest page ~20 µs (host shadow paging; docs/architecture.md, the host's quirks), which is where the btree walk's time goes: it maps 3400 pages at fresh vmalloc addresses.\n");
    md.push_str("\n### The seed's claim: lazy purging and vmap_pages against eager vunmap\n\n");
    md.push_str("![hypercalls per visit](hypercalls.svg)\n\n");
    let rows = per_visit(g);
    let _ = writeln!(md, "| per 1000 visits | {} |", PER_VISIT.join(" | "));
    let _ = writeln!(md, "|---{}|", "|---".repeat(PER_VISIT.len()));
    for (v, xs) in &rows {
        let cells: Vec<String> = xs
            .iter()
            .map(|x| x.map_or("–".into(), |x| format!("{x:.0}")))
            .collect();
        let _ = writeln!(md, "| {v} | {} |", cells.join(" | "));
    }
    md.push_str("\nThe guest's unmap+flush hypercalls are its vmap-area hypercalls (COUNTS `vmap_hypercalls`) less one map per vmap.\n\n");
    goal_table(md, &goals::guest(g));
}

/// Writes results.json, REPORT.md and the charts into `dir`.
pub fn write(dir: &Path, inp: &Inputs) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Write(dir.display().to_string(), e))?;
    let mut all_goals = Vec::new();
    if let Some(v) = inp.validator.get() {
        pin_chart(dir, v)?;
        all_goals.extend(goals::validator(v));
    }
    if let Some(e) = inp.exits.get() {
        exits_chart(dir, e)?;
        all_goals.extend(goals::exits(e));
    }
    if let Some(g) = inp.guest.get() {
        wall_chart(dir, g)?;
        hypercalls_chart(dir, g)?;
        all_goals.extend(goals::guest(g));
    }
    let results = json!({
        "schema": 1,
        "machine": inp.machine,
        "validator": inp.validator.get(),
        "validator_missing": (inp.validator.get().is_none()).then(|| missing(&inp.validator)),
        "vmm_exits": inp.exits.get(),
        "vmm_exits_missing": (inp.exits.get().is_none()).then(|| missing(&inp.exits)),
        "guest": inp.guest.get(),
        "guest_missing": (inp.guest.get().is_none()).then(|| missing(&inp.guest)),
        "goals": all_goals,
    });
    let text = serde_json::to_string_pretty(&results).map_err(Error::Json)? + "\n";
    let p = dir.join("results.json");
    std::fs::write(&p, text).map_err(|e| Error::Write(p.display().to_string(), e))?;

    let m = &inp.machine;
    let mut md = String::new();
    md.push_str("# Benchmark report\n\nWritten by `bash scripts/bench.sh` (bench-report/); every figure below is also in `results.json`. Nothing here is a test: figures and ratios against issue 12's goals.\n\n");
    let _ = writeln!(
        md,
        "Machine: {} ({} cores), Linux {}, KVM {}, {}, {}; {}.\n",
        m.cpu_model,
        m.cores,
        m.kernel,
        if m.kvm { "yes" } else { "no" },
        m.qemu_version.as_deref().unwrap_or("QEMU not installed"),
        m.xen_package
            .as_deref()
            .unwrap_or("Xen package not fetched"),
        m.date
    );
    if let [a, b, c] = m.load_average[..] {
        let _ = writeln!(
            md,
            "Load average when the report was written: {a:.2} {b:.2} {c:.2} on {} cores (other work on the machine widens the spreads and moves the medians).\n",
            m.cores
        );
    }
    let (n, hit) = (all_goals.len(), all_goals.iter().filter(|g| g.met).count());
    let _ = writeln!(md, "Goals: {hit} of {n} met.\n");
    validator_md(&mut md, inp);
    exits_md(&mut md, inp);
    guest_md(&mut md, inp);
    let p = dir.join("REPORT.md");
    std::fs::write(&p, md).map_err(|e| Error::Write(p.display().to_string(), e))?;
    Ok(())
}
