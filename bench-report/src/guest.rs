//! The guest workloads on both hypervisors: every `matrix` row of guest/scenarios.manifest
//! booted on our VMM (KVM) and on real Xen 4.17 in QEMU, one run at a time (never both at
//! once, so neither slows the other), `reps` times each. Records wall times, the guest-only
//! time, the VMM's exit and hypercall counts and the guest's own COUNTS/WORK lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use xenkvm_tests::manifest::{manifest, Case};
use xenkvm_tests::real_xen::{run_on_xen_with, XenOptions, XenStatus};

use crate::stats::Spread;
use crate::Error;

/// Xen prints `[seconds.micros]` since its boot on every console line with this option; the
/// guest-only time is read from two of its lines (see [`xen_guest_seconds`]).
const XEN_TIMESTAMPS: &str = "console_timestamps=boot";

/// One scenario on one hypervisor, over all repetitions.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Side {
    /// Host wall time of the whole run: process start to exit (real Xen: QEMU start to kill,
    /// Xen's own boot included).
    pub wall_s: Spread,
    /// The guest's own time: VMM: its summary's wall time less its setup; real Xen: from
    /// "*** Serial input to DOM0" to "Hardware Dom0 halted" in Xen's console timestamps.
    pub guest_s: Option<Spread>,
    /// `result=` of each VERDICT line (first repetition).
    pub verdicts: Vec<String>,
    /// Every repetition powered off with the manifest's verdicts, all PASS.
    pub ok: bool,
    /// Why not, when `ok` is false.
    pub problem: Option<String>,
}

/// The VMM's counters from its summary (first repetition; the runs are deterministic).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct VmmCounts {
    pub exits: u64,
    pub hypercalls: u64,
    pub hypercalls_by_kind: BTreeMap<String, u64>,
    pub flush_requests: u64,
    pub cr3_reloads: u64,
    pub invlpgs: u64,
    pub pins: u64,
    pub refusals: u64,
    /// The summary's `exit cost:` line: time inside KVM_RUN (the guest and the exits'
    /// hardware/KVM cost) and the VMM's own work between KVM_RUNs, in ns (absent from VMMs
    /// without the line).
    #[serde(default)]
    pub in_kvm_ns: Option<u64>,
    #[serde(default)]
    pub own_ns: Option<u64>,
    /// KVM_RUN calls (the exits plus the ring-0 trampoline's runs).
    #[serde(default)]
    pub kvm_runs: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CaseResult {
    pub cmdline: String,
    pub what: String,
    pub vmm: Side,
    pub xen: Side,
    pub vmm_counts: VmmCounts,
    /// The guest's `COUNTS` lines (one per part; the demo has two), as key → value.
    pub guest_counts: Vec<BTreeMap<String, u64>>,
    /// The guest's `WORK` line, if it printed one.
    pub work: Option<BTreeMap<String, u64>>,
    /// Real Xen's median wall time over ours (> 1: we are faster).
    pub ratio_wall: Option<f64>,
    /// The same for the guest-only times.
    pub ratio_guest: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GuestResults {
    pub date: String,
    /// The machine's load averages (1, 5, 15 min) before and after the runs.
    #[serde(default)]
    pub load_before: Vec<f64>,
    #[serde(default)]
    pub load_after: Vec<f64>,
    pub reps: usize,
    pub cases: Vec<CaseResult>,
}

/// Options of `bench-report guest`.
pub struct GuestOpts {
    pub reps: usize,
    pub vmm: PathBuf,
    /// Only the cases whose command line contains this.
    pub filter: Option<String>,
    /// Run xfs-btree-walk with this many blocks instead of the manifest's.
    pub blocks: Option<u64>,
}

/// `cmdline` with its `blocks=` value replaced (only xfs-btree-walk's: the verdict does not
/// depend on the size).
fn with_blocks(cmdline: &str, blocks: Option<u64>) -> String {
    match blocks {
        Some(n) if cmdline.starts_with("scenario=xfs-btree-walk ") => cmdline
            .split_whitespace()
            .map(|w| {
                if w.starts_with("blocks=") {
                    format!("blocks={n}")
                } else {
                    w.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => cmdline.to_string(),
    }
}

/// `key=value` pairs with numeric values on `line` (other words are skipped).
pub fn fields(line: &str) -> BTreeMap<String, u64> {
    line.split_whitespace()
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            Some((
                k.to_string(),
                v.trim_end_matches(['s', ',', ')']).parse().ok()?,
            ))
        })
        .collect()
}

/// The number after `key` (e.g. `"wall time="`) on the first stderr line holding it.
fn number_after(text: &str, key: &str) -> Option<f64> {
    let rest = text.split(key).nth(1)?;
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The VMM's summary (vmm/src/summary.rs) read back.
fn vmm_counts(stderr: &str) -> VmmCounts {
    let line = |p: &str| stderr.lines().find(|l| l.starts_with(p)).unwrap_or("");
    let hc = line("hypercalls: ");
    let mut by_kind = BTreeMap::new();
    // "hypercalls: N (incl. ...)  console_io=11  mmu_update=..." : the kinds follow the ')'.
    if let Some((_, kinds)) = hc.split_once(')') {
        by_kind = fields(kinds);
    }
    let mmu = fields(line("mmu: "));
    let cost = fields(line("exit cost: "));
    let get = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    VmmCounts {
        exits: number_after(stderr, "vcpu exits=").unwrap_or(0.0) as u64,
        hypercalls: number_after(hc, "hypercalls: ").unwrap_or(0.0) as u64,
        hypercalls_by_kind: by_kind,
        flush_requests: get(&mmu, "flush_requests"),
        cr3_reloads: get(&mmu, "cr3_reloads"),
        invlpgs: get(&mmu, "invlpgs"),
        pins: get(&mmu, "pins"),
        refusals: number_after(stderr, "\nrefusals=").unwrap_or(0.0) as u64,
        in_kvm_ns: cost.get("in_kvm_ns").copied(),
        own_ns: cost.get("own_ns").copied(),
        kvm_runs: cost.get("kvm_runs").copied(),
    }
}

fn verdicts<S: AsRef<str>>(lines: &[S]) -> (Vec<String>, bool) {
    let v: Vec<&str> = lines
        .iter()
        .map(AsRef::as_ref)
        .filter(|l| l.starts_with("VERDICT "))
        .collect();
    let all_pass = v.iter().all(|l| l.trim_end().ends_with(" PASS"));
    let results = v
        .iter()
        .filter_map(|l| Some(l.split(" result=").nth(1)?.split(' ').next()?.to_string()))
        .collect();
    (results, all_pass)
}

/// Seconds since Xen's boot at the start of a timestamped "(XEN) [   1.234567] ..." line.
fn xen_stamp(line: &str) -> Option<f64> {
    let rest = line.strip_prefix("(XEN) [")?;
    rest.split(']').next()?.trim().parse().ok()
}

/// The guest-only time on real Xen: dom0 starts right after "*** Serial input to DOM0"
/// (console_endboot, the end of Xen's boot) and ends at "Hardware Dom0 halted".
pub fn xen_guest_seconds(xen_lines: &[String]) -> Option<f64> {
    let at = |pat: &str| {
        xen_lines
            .iter()
            .find(|l| l.contains(pat))
            .and_then(|l| xen_stamp(l))
    };
    let (a, b) = (at("Serial input to DOM0")?, at("Hardware Dom0 halted")?);
    (b >= a).then_some(b - a)
}

struct VmmRep {
    wall: f64,
    guest: Option<f64>,
    stdout: String,
    stderr: String,
    status: Option<i32>,
}

fn run_vmm(vmm: &Path, elf: &Path, cmdline: &str) -> Result<VmmRep, Error> {
    let mut cmd = Command::new(vmm);
    cmd.arg("run");
    // The demo is what `vmm run` boots by default (the embedded guest), as in the matrix test.
    if cmdline != "scenario=demo" {
        cmd.arg(elf).arg("--cmdline").arg(cmdline);
    }
    let t = Instant::now();
    let out = cmd
        .output()
        .map_err(|e| Error::Spawn(vmm.display().to_string(), e))?;
    let wall = t.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let guest = match (
        number_after(&stderr, "wall time="),
        number_after(&stderr, "(setup "),
    ) {
        (Some(w), Some(s)) if w >= s => Some(w - s),
        _ => None,
    };
    Ok(VmmRep {
        wall,
        guest,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        status: out.status.code(),
    })
}

fn check(who: &str, halted: bool, got: &(Vec<String>, bool), want: &[String]) -> Option<String> {
    if !halted {
        return Some(format!("{who} did not power off cleanly"));
    }
    if got.0 != want {
        return Some(format!("{who}: verdicts {:?}, expected {want:?}", got.0));
    }
    (!got.1).then(|| format!("{who}: a VERDICT line is not PASS"))
}

fn run_case(c: &Case, elf: &Path, opts: &GuestOpts) -> Result<CaseResult, Error> {
    let xen_opts = XenOptions {
        xen_args: Some(XEN_TIMESTAMPS.into()),
        ..XenOptions::default()
    };
    let (mut vw, mut vg, mut xw, mut xg) = (vec![], vec![], vec![], vec![]);
    let mut vmm_side = Side {
        ok: true,
        ..Side::default()
    };
    let mut xen_side = vmm_side.clone();
    let mut first: Option<VmmRep> = None;
    for rep in 0..opts.reps {
        let v = run_vmm(&opts.vmm, elf, &c.cmdline)?;
        let x = run_on_xen_with(elf, &c.cmdline, &xen_opts);
        let vv = verdicts(&v.stdout.lines().collect::<Vec<_>>());
        let xv = verdicts(&x.guest_lines);
        for (side, p) in [
            (
                &mut vmm_side,
                check("vmm", v.status == Some(0), &vv, &c.verdicts),
            ),
            (
                &mut xen_side,
                check("real Xen", x.status == XenStatus::Halted, &xv, &c.verdicts),
            ),
        ] {
            if let (Some(p), None) = (p, &side.problem) {
                side.ok = false;
                side.problem = Some(format!("repetition {}: {p}", rep + 1));
            }
        }
        if rep == 0 {
            vmm_side.verdicts = vv.0;
            xen_side.verdicts = xv.0;
        }
        vw.push(v.wall);
        vg.extend(v.guest);
        xw.push(x.wall.as_secs_f64());
        xg.extend(xen_guest_seconds(&x.xen_lines));
        first.get_or_insert(v);
    }
    let first = first.ok_or(Error::NoReps)?;
    vmm_side.wall_s = Spread::of(&vw);
    xen_side.wall_s = Spread::of(&xw);
    vmm_side.guest_s = (vg.len() == vw.len()).then(|| Spread::of(&vg));
    xen_side.guest_s = (xg.len() == xw.len()).then(|| Spread::of(&xg));
    let lines: Vec<&str> = first.stdout.lines().collect();
    let ratio = |x: &Option<Spread>, v: &Option<Spread>| match (x, v) {
        (Some(x), Some(v)) if v.median > 0.0 => Some(x.median / v.median),
        _ => None,
    };
    Ok(CaseResult {
        cmdline: c.cmdline.clone(),
        what: c.what.clone(),
        ratio_wall: ratio(&Some(xen_side.wall_s), &Some(vmm_side.wall_s)),
        ratio_guest: ratio(&xen_side.guest_s, &vmm_side.guest_s),
        vmm: vmm_side,
        xen: xen_side,
        vmm_counts: vmm_counts(&first.stderr),
        guest_counts: lines
            .iter()
            .filter(|l| l.starts_with("COUNTS "))
            .map(|l| fields(l))
            .collect(),
        work: lines
            .iter()
            .find(|l| l.starts_with("WORK "))
            .map(|l| fields(l)),
    })
}

/// Runs every matrix case (or those matching the filter) and prints one line per case.
pub fn run(opts: &GuestOpts, elf: &Path, date: String) -> Result<GuestResults, Error> {
    let load_before = crate::machine::load_average();
    let cases: Vec<Case> = manifest()
        .into_iter()
        .filter(Case::in_matrix)
        .filter(|c| {
            opts.filter
                .as_ref()
                .is_none_or(|f| c.cmdline.contains(f.as_str()))
        })
        .map(|mut c| {
            c.cmdline = with_blocks(&c.cmdline, opts.blocks);
            c
        })
        .collect();
    println!(
        "{:<50} {:>8} {:>8} {:>6} {:>8} {:>8} {:>6} {:>7} {:>7}",
        "scenario", "vmm_s", "xen_s", "ratio", "vmm_g_s", "xen_g_s", "ratio", "exits", "hcalls"
    );
    let mut out = Vec::new();
    for c in &cases {
        let r = run_case(c, elf, opts)?;
        let g = |s: &Option<Spread>| s.map_or("-".into(), |s| format!("{:.3}", s.median));
        let f = |x: Option<f64>| x.map_or("-".into(), |x| format!("{x:.2}"));
        println!(
            "{:<50} {:>8.3} {:>8.3} {:>6} {:>8} {:>8} {:>6} {:>7} {:>7}{}",
            r.cmdline,
            r.vmm.wall_s.median,
            r.xen.wall_s.median,
            f(r.ratio_wall),
            g(&r.vmm.guest_s),
            g(&r.xen.guest_s),
            f(r.ratio_guest),
            r.vmm_counts.exits,
            r.vmm_counts.hypercalls,
            match (&r.vmm.problem, &r.xen.problem) {
                (None, None) => String::new(),
                (a, b) => format!(
                    "  PROBLEM: {}",
                    [a, b]
                        .into_iter()
                        .flatten()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            }
        );
        out.push(r);
    }
    Ok(GuestResults {
        date,
        load_before,
        load_after: crate::machine::load_average(),
        reps: opts.reps,
        cases: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_vmm_summary_and_xen_timestamps() {
        let stderr = "=== vmm summary: guest powered off ===\n\
            hypercalls: 1855 (incl. 47 inside multicalls; 32 continuations)  console_io=11  mmuext_op=27\n\
            mmu: pins=2 unpins=0 pte_updates=23172 baseptr_switches=0 flush_requests=75 cr3_reloads=31 invlpgs=1\n\
            refusals=3 violations=0 efaults=0 console_bytes=829\n\
            vcpu exits=1899 (11142/s; instructions emulated by the vmm: 0)  ring-0 trampoline 0.025s (14.8% of wall)  wall time=0.170s\n\
            exit cost: kvm_runs=1899 in_kvm_ns=266384483 own_ns=22318589 idle_ns=0 per run: in_kvm=140276 ns\n\
            (setup 0.004s)\n";
        let c = vmm_counts(stderr);
        assert_eq!((c.exits, c.hypercalls, c.refusals), (1899, 1855, 3));
        assert_eq!(
            (c.flush_requests, c.cr3_reloads, c.invlpgs, c.pins),
            (75, 31, 1, 2)
        );
        assert_eq!(c.hypercalls_by_kind.get("mmuext_op"), Some(&27));
        assert_eq!(c.hypercalls_by_kind.len(), 2);
        assert_eq!((c.in_kvm_ns, c.own_ns), (Some(266384483), Some(22318589)));
        assert_eq!(c.kvm_runs, Some(1899));
        assert_eq!(number_after(stderr, "(setup "), Some(0.004));
        let xen: Vec<String> = [
            "(XEN) [000000000e6d6147] Xen version 4.17.7",
            "(XEN) [    0.916792] *** Serial input to DOM0 (type 'CTRL-a' three times)",
            "(XEN) [    1.034292] Hardware Dom0 halted: halting machine",
        ]
        .map(String::from)
        .to_vec();
        let g = xen_guest_seconds(&xen).expect("both lines");
        assert!((g - 0.1175).abs() < 1e-9, "{g}");
        assert_eq!(xen_guest_seconds(&xen[..2]), None);
        assert_eq!(
            with_blocks("scenario=xfs-btree-walk variant=lazy blocks=1700", Some(64)),
            "scenario=xfs-btree-walk variant=lazy blocks=64"
        );
        assert_eq!(
            with_blocks("scenario=kmap variant=lazy", Some(64)),
            "scenario=kmap variant=lazy"
        );
    }
}
