//! The scenario matrix: every scenario × variant marked `matrix` in guest/scenarios.manifest (the
//! one list of the guest's scenarios, also read by scripts/conformance.sh and rendered into
//! docs/scenarios.md) boots on our VMM (KVM) and on real Xen 4.17 (QEMU). For each case:
//! * the VERDICTs are the manifest's (Xen's rules decide them, not our output);
//! * on the VMM, a refusal's stderr and JSON log name the stale mapping precisely (vmalloc VA +
//!   L1 slot, pkmap slot, fixmap slot, direct-map VA + pfn), as the manifest's provenance says;
//! * the two transcripts (T-lines, END, COUNTS, WORK, VERDICT, DEMO) are identical.
//!
//! Plus: the default `vmm run` (README's first command) is the demo, and `--policy audit` runs
//! xfs-vmap lazy to the end listing every offender. Runs are spread over two workers (2 cores).
//! Without KVM or QEMU: the manifest itself is checked against the guest's scenario table,
//! docs/scenarios.md, guest/README.md and scripts/conformance.sh, so none of them can drift.

mod vmm_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;
use vmm_support::*;
use xenkvm_tests::guest::guest_elf;
use xenkvm_tests::manifest::{manifest, parse_manifest, Case, Prov};
use xenkvm_tests::real_xen::{qemu_or_skip, run_on_xen, XenRun, XenStatus};
use xenkvm_tests::transcript::{diff, Transcript};

/// The matrix: the manifest's `matrix` rows, in its order. Expected results follow Xen's rule:
/// a frame still mapped RW cannot be pinned (-22); a RW mapping of a pinned table is refused
/// (-16).
fn matrix_cases() -> Vec<Case> {
    manifest().into_iter().filter(Case::in_matrix).collect()
}

/// Lines that must be identical under both hypervisors.
fn conformance_lines<S: AsRef<str>>(lines: &[S]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.as_ref().trim_end())
        .filter(|l| {
            ["END ", "COUNTS ", "WORK ", "VERDICT ", "DEMO "]
                .iter()
                .any(|p| l.starts_with(p))
                || (l.starts_with('T') && l[1..].starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(str::to_string)
        .collect()
}

/// The transcripts of a run (one per `END`), each parsed and checked.
fn transcripts(lines: &[String]) -> Result<Vec<Transcript>, String> {
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    for l in lines {
        cur.push(l);
        if l.starts_with("END ") {
            out.push(Transcript::parse(&cur).map_err(|e| e.to_string())?);
            cur.clear();
        }
    }
    if out.is_empty() {
        return Err("no END line".into());
    }
    Ok(out)
}

/// Checks one case; returns every problem found.
fn check_case(c: &Case, xen: &XenRun, run: &VmmRun, log: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    if xen.status != XenStatus::Halted {
        bad.push(format!("real Xen did not halt cleanly:\n{}", xen.dump()));
    }
    if run.status != Some(EXIT_POWEROFF) {
        bad.push(format!("vmm did not power off:\n{}", run.dump()));
    }
    let x = conformance_lines(&xen.guest_lines);
    let v = conformance_lines(&run.lines());
    match (transcripts(&x), transcripts(&v)) {
        (Ok(tx), Ok(tv)) if tx.len() == tv.len() => {
            for (a, b) in tx.iter().zip(&tv) {
                if let Some(d) = diff("real Xen", a, "vmm", b) {
                    bad.push(format!("transcripts differ:\n{d}"));
                }
            }
        }
        (a, b) => bad.push(format!("transcripts: real Xen {a:?}, vmm {b:?}")),
    }
    if x != v {
        let d: Vec<String> = x
            .iter()
            .zip(&v)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("  real Xen: {a}\n  vmm:      {b}"))
            .collect();
        bad.push(format!(
            "conformance lines differ ({} vs {} lines):\n{}",
            x.len(),
            v.len(),
            d.join("\n")
        ));
    }
    // Verdicts as the manifest expects them, on both hypervisors.
    for (who, lines) in [("real Xen", &x), ("vmm", &v)] {
        let got: Vec<&str> = lines
            .iter()
            .filter(|l| l.starts_with("VERDICT "))
            .filter_map(|l| l.split(" result=").nth(1)?.split(' ').next())
            .collect();
        if got != c.verdicts.iter().map(String::as_str).collect::<Vec<_>>() {
            bad.push(format!(
                "{who}: verdicts {got:?}, expected {:?}",
                c.verdicts
            ));
        }
        if lines
            .iter()
            .any(|l| l.starts_with("VERDICT ") && !l.ends_with(" PASS"))
        {
            bad.push(format!("{who}: a VERDICT line is not PASS"));
        }
    }
    bad.extend(check_provenance(c.prov, &run.stderr, log));
    bad
}

/// The VMM names the stale mapping on stderr and in the JSON log's violation records.
fn check_provenance(p: Prov, stderr: &str, log: &Path) -> Vec<String> {
    let mut bad = Vec::new();
    let json: Vec<Value> = std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let prov_json: Vec<String> = json
        .iter()
        .filter_map(|v| v.get("provenance")?.as_array().cloned())
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    // Pin refusals for stray writable mappings ("... cannot become an L4 pagetable ...").
    let refusals = stderr
        .lines()
        .filter(|l| l.starts_with("vmm: REFUSED") && l.contains("cannot become"))
        .count();
    let want: Option<fn(&str) -> bool> = match p {
        Prov::Any => return bad,
        Prov::None => None,
        Prov::Vmalloc => Some(|l| {
            // "... still mapped RW by L1 mfn 3a slot 0 at vmalloc va ffffc90000000000 [...]"
            l.contains("still mapped RW by L1 mfn ")
                && l.contains(" slot ")
                && l.contains("at vmalloc va ffffc900")
                && l.contains("[vmalloc/vmap area +0x")
        }),
        Prov::Pkmap => Some(|l| {
            l.contains("still mapped RW by L1 mfn ")
                && l.contains("va ffffe900")
                && l.contains("[pkmap slot ")
        }),
        Prov::Fixmap => Some(|l| l.contains("RW mapping of mfn ") && l.contains("[fixmap slot 1")),
        Prov::DirectMap => Some(|l| {
            // The direct-map VA of pfn N is 0xffff888000000000 + N * 4096.
            let Some(rest) = l.split("at direct-map va ").nth(1) else {
                return false;
            };
            let va = u64::from_str_radix(&rest[..16], 16).unwrap_or(0);
            let pfn = rest
                .split("lowmem alias of pfn ")
                .nth(1)
                .and_then(|s| u64::from_str_radix(s.trim_end_matches(']'), 16).ok());
            pfn.is_some_and(|p| va == 0xffff_8880_0000_0000 + p * 4096)
        }),
    };
    match want {
        None => {
            if refusals != 0 {
                bad.push(format!("{refusals} refusal(s) where none is expected"));
            }
        }
        Some(f) => {
            let lines: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with("provenance: "))
                .collect();
            let any_refusal = stderr.lines().any(|l| l.starts_with("vmm: REFUSED"));
            if !any_refusal || !lines.iter().any(|l| f(l)) {
                bad.push(format!(
                    "stderr lacks the expected provenance ({p:?}); provenance lines: {lines:#?}"
                ));
            }
            if !prov_json.iter().any(|l| f(l)) {
                bad.push(format!(
                    "JSON log lacks the expected provenance ({p:?}): {prov_json:#?}"
                ));
            }
        }
    }
    bad
}

enum Job {
    Xen(usize),
    Vmm(usize),
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("scenarios-matrix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

#[test]
fn every_scenario_matches_real_xen_with_expected_verdicts_and_provenance() {
    const T: &str = "every_scenario_matches_real_xen_with_expected_verdicts_and_provenance";
    if !kvm_or_skip(T) || !qemu_or_skip(T) {
        return;
    }
    let start = Instant::now();
    let cases = matrix_cases();
    let elf = guest_elf();
    let elf_s = elf.to_str().expect("utf-8 path").to_string();
    vmm_bin(); // build once before the workers start
    let jobs: Mutex<Vec<Job>> = Mutex::new(
        (0..cases.len())
            .flat_map(|i| [Job::Xen(i), Job::Vmm(i)])
            .rev()
            .collect(),
    );
    let xen_runs: Mutex<BTreeMap<usize, XenRun>> = Mutex::new(BTreeMap::new());
    let vmm_runs: Mutex<BTreeMap<usize, VmmRun>> = Mutex::new(BTreeMap::new());
    let log = |i: usize| tmp(&format!("case{i}.jsonl"));
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some(job) = jobs.lock().unwrap().pop() else {
                    break;
                };
                match job {
                    Job::Xen(i) => {
                        let r = run_on_xen(&elf, &cases[i].cmdline);
                        xen_runs.lock().unwrap().insert(i, r);
                    }
                    Job::Vmm(i) => {
                        let l = log(i);
                        let l = l.to_str().unwrap();
                        // The demo is what `vmm run` boots by default (README's first command).
                        let r = if cases[i].cmdline == "scenario=demo" {
                            vmm(&["run", "--log", l])
                        } else {
                            vmm(&["run", &elf_s, "--cmdline", &cases[i].cmdline, "--log", l])
                        };
                        vmm_runs.lock().unwrap().insert(i, r);
                    }
                }
            });
        }
    });
    let xen_runs = xen_runs.into_inner().unwrap();
    let vmm_runs = vmm_runs.into_inner().unwrap();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let bad = check_case(c, &xen_runs[&i], &vmm_runs[&i], &log(i));
        eprintln!(
            "{:<48} xen {:>5.2?} vmm {:>5.2?} {}",
            c.cmdline,
            xen_runs[&i].wall,
            vmm_runs[&i].wall,
            if bad.is_empty() { "ok" } else { "FAILED" }
        );
        if !bad.is_empty() {
            failures.push(format!("== {}\n{}", c.cmdline, bad.join("\n")));
        }
    }
    std::fs::remove_dir_all(tmp("x").parent().unwrap()).ok();
    eprintln!(
        "scenario matrix: {} cases x 2 hypervisors in {:.1?}",
        cases.len(),
        start.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The hostile run must also have been answered with errors (not just survived).
#[test]
fn hostile_calls_are_answered_with_errors_and_the_vmm_survives() {
    const T: &str = "hostile_calls_are_answered_with_errors_and_the_vmm_survives";
    if !kvm_or_skip(T) {
        return;
    }
    let elf = guest_elf();
    let run = vmm(&[
        "run",
        "-q",
        elf.to_str().unwrap(),
        "--cmdline",
        "scenario=hostile seed=7 calls=300",
    ]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let t = run
        .transcript()
        .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    assert_eq!(t.ops.len(), 300);
    let rcs = t.rcs();
    // Xen's errors for garbage: -EINVAL, -EFAULT, -ESRCH, -ENOSYS all occur.
    for e in [-22, -14, -3, -38] {
        assert!(rcs.contains(&e), "no {e} among the answers\n{}", run.dump());
    }
    assert!(!run.stderr.contains("panicked"), "{}", run.dump());
}

/// `--policy audit`: xfs-vmap lazy runs to the end and the log names every offender: each of
/// the 4 page-table frames of the process (L4, L3, L2, L1) reuses a page freed while a stale
/// vmap alias still maps it RW.
#[test]
fn audit_mode_runs_xfs_vmap_lazy_to_the_end_listing_every_offender() {
    const T: &str = "audit_mode_runs_xfs_vmap_lazy_to_the_end_listing_every_offender";
    if !kvm_or_skip(T) {
        return;
    }
    let elf = guest_elf();
    let log = tmp("audit.jsonl");
    let run = vmm(&[
        "run",
        elf.to_str().unwrap(),
        "--cmdline",
        "scenario=xfs-vmap variant=lazy",
        "--policy",
        "audit",
        "--log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let t = run
        .transcript()
        .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    assert!(t.end.starts_with("END xfs-vmap"), "{}", run.dump());
    assert!(
        t.ops
            .iter()
            .any(|o| o.what == "xen_pgd_pin (4 tables)" && o.rc == 0),
        "audit lets the pin through\n{}",
        run.dump()
    );
    let text = std::fs::read_to_string(&log).expect("log");
    std::fs::remove_file(&log).ok();
    let mut offenders = std::collections::BTreeSet::new();
    let mut levels = std::collections::BTreeSet::new();
    for v in text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        for viol in v["violations"].as_array().into_iter().flatten() {
            assert_eq!(viol["tolerated"], Value::Bool(true), "{viol}");
            offenders.insert(viol["frame"].as_u64().unwrap());
            levels.insert(viol["wanted"].as_str().unwrap_or("?").to_string());
            let vas: Vec<u64> = viol["mappings"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|m| m["vas"].as_array().cloned().unwrap_or_default())
                .filter_map(|va| va["va"].as_u64())
                .collect();
            assert!(
                vas.iter()
                    .any(|&va| (0xffff_c900_0000_0000..0xffff_e900_0000_0000).contains(&va)),
                "offender without a vmalloc VA: {viol}"
            );
        }
    }
    assert_eq!(
        offenders.len(),
        4,
        "offenders {offenders:?}\n{}",
        run.dump()
    );
    assert_eq!(levels.len(), 4, "one per level: {levels:?}");
    let audit_lines = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("audit: tolerated"))
        .count();
    assert_eq!(audit_lines, 4, "{}", run.stderr);
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.contains("at vmalloc va ffffc900"))
            .count(),
        4,
        "{}",
        run.stderr
    );
}

// ---- The manifest and the places that used to keep their own copy (no KVM, no QEMU). ----

const DOC_BEGIN: &str = "<!-- BEGIN generated from guest/scenarios.manifest -->";
const DOC_END: &str = "<!-- END generated from guest/scenarios.manifest -->";

/// `scenario=NAME` of a command line.
fn scenario_name(cmdline: &str) -> &str {
    cmdline
        .split_whitespace()
        .next()
        .and_then(|w| w.strip_prefix("scenario="))
        .unwrap_or("")
}

/// The catalogue table of docs/scenarios.md, rendered from the manifest.
fn render_catalogue(cases: &[Case]) -> String {
    let mut out = String::new();
    out.push_str(DOC_BEGIN);
    out.push_str(
        "\n<!-- do not edit: SCENARIOS_DOC=write cargo test -p xenkvm-tests --test scenarios_matrix manifest -->\n\n",
    );
    out.push_str(
        "| scenario | options | VERDICT results | provenance named | runs in | what happens |\n",
    );
    out.push_str("|---|---|---|---|---|---|\n");
    // Grouped by scenario, in the order each first appears (the manifest's order is the
    // matrix's run order, longest first).
    let mut names: Vec<&str> = Vec::new();
    for c in cases {
        if !names.contains(&scenario_name(&c.cmdline)) {
            names.push(scenario_name(&c.cmdline));
        }
    }
    let grouped = names.iter().flat_map(|n| {
        cases
            .iter()
            .filter(move |c| scenario_name(&c.cmdline) == *n)
    });
    for c in grouped {
        let opts: Vec<&str> = c.cmdline.split_whitespace().skip(1).collect();
        let code = |s: &str| format!("`{s}`");
        let opts = if opts.is_empty() {
            "".to_string()
        } else {
            code(&opts.join(" "))
        };
        let verdicts = if c.verdicts.is_empty() {
            "no VERDICT line".to_string()
        } else {
            c.verdicts
                .iter()
                .map(|v| code(v))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let prov = match c.prov {
            Prov::Any => "not checked",
            Prov::None => "no refusal",
            Prov::Vmalloc => "vmalloc VA + L1 slot",
            Prov::Pkmap => "pkmap slot",
            Prov::Fixmap => "fixmap slot",
            Prov::DirectMap => "direct-map VA + pfn",
        };
        let runs = if c.runs.is_empty() {
            "—".to_string()
        } else {
            c.runs.join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {opts} | {verdicts} | {prov} | {runs} | {} |\n",
            scenario_name(&c.cmdline),
            c.what
        ));
    }
    out.push('\n');
    out.push_str(DOC_END);
    out
}

#[test]
fn manifest_parses_and_names_every_scenario_the_guest_knows() {
    let cases = manifest();
    // The guest's `SCENARIOS` table: lines `    ("name", module::run),`.
    let src = include_str!("../../guest/src/scenarios/mod.rs");
    let table = src
        .split("const SCENARIOS")
        .nth(1)
        .and_then(|s| s.split("];").next())
        .expect("guest/src/scenarios/mod.rs has a SCENARIOS table");
    let guest: std::collections::BTreeSet<&str> = table
        .lines()
        .filter_map(|l| l.trim().strip_prefix("(\"")?.split('"').next())
        .collect();
    let listed: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| scenario_name(&c.cmdline)).collect();
    assert!(guest.len() > 10, "parsed the guest's table: {guest:?}");
    assert_eq!(
        guest, listed,
        "every scenario of guest/src/scenarios/mod.rs has a row in guest/scenarios.manifest and no other"
    );
    for c in &cases {
        if c.prov != Prov::Any && c.prov != Prov::None {
            assert!(
                c.runs.iter().any(|r| r == "matrix"),
                "{}: a provenance is checked only in the matrix",
                c.cmdline
            );
        }
    }
    assert!(matrix_cases().iter().any(|c| c.cmdline == "scenario=demo"));
    assert!(parse_manifest("scenario=x | - | wrong | - | y").is_err());
    assert!(parse_manifest("scenario=x | - | any | -").is_err());
    assert!(parse_manifest("scenario=x | - | any | elsewhere | y").is_err());
}

#[test]
fn manifest_and_docs_scenarios_md_agree() {
    let path = xenkvm_tests::guest::repo_root().join("docs/scenarios.md");
    let doc = std::fs::read_to_string(&path).expect("docs/scenarios.md");
    let want = render_catalogue(&manifest());
    let (Some(a), Some(b)) = (doc.find(DOC_BEGIN), doc.find(DOC_END)) else {
        panic!("docs/scenarios.md lacks the markers {DOC_BEGIN} ... {DOC_END}");
    };
    let have = &doc[a..b + DOC_END.len()];
    if have == want {
        return;
    }
    if std::env::var("SCENARIOS_DOC").is_ok_and(|v| v == "write") {
        let new = format!("{}{want}{}", &doc[..a], &doc[b + DOC_END.len()..]);
        std::fs::write(&path, new).expect("write docs/scenarios.md");
        eprintln!("docs/scenarios.md: catalogue rewritten from guest/scenarios.manifest");
        return;
    }
    panic!(
        "docs/scenarios.md's catalogue differs from guest/scenarios.manifest; rerun with \
         SCENARIOS_DOC=write to regenerate it. Expected:\n{want}"
    );
}

#[test]
fn manifest_is_the_only_list_conformance_sh_and_guest_readme_keep_none() {
    let root = xenkvm_tests::guest::repo_root();
    let sh = std::fs::read_to_string(root.join("scripts/conformance.sh")).expect("conformance.sh");
    assert!(
        sh.contains("guest/scenarios.manifest"),
        "scripts/conformance.sh reads guest/scenarios.manifest"
    );
    let own: Vec<&str> = sh
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("scenario="))
        .collect();
    assert!(
        own.is_empty(),
        "conformance.sh keeps its own cases: {own:?}"
    );
    let readme = std::fs::read_to_string(root.join("guest/README.md")).expect("guest/README.md");
    assert!(
        readme.contains("docs/scenarios.md"),
        "guest/README.md points to the catalogue"
    );
    for c in manifest() {
        let row = format!("| `{}` |", scenario_name(&c.cmdline));
        assert!(
            !readme.lines().any(|l| l.starts_with(&row)),
            "guest/README.md keeps its own row for {}: the catalogue is docs/scenarios.md",
            c.cmdline
        );
    }
}
