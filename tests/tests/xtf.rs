//! Third-party PV kernels: every XTF pv64 test kernel in ../shared/xtf runs under the VMM and
//! must end with the verdict real Xen 4.17 gives (the table in ../shared/xtf/README.md, which
//! this test reads), and SUCCESS for the tests this QEMU cannot run on real Xen (selftest and
//! both pv-iopl sub-tests: XTF's own expectation on a correct hypervisor).
//!
//! ../shared/xtf is external input beside the repository, not part of it (docs/testing.md).
//! In CI a missing ../shared/xtf fails loudly; elsewhere the test skips with one line.

mod vmm_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use vmm_support::{kvm_or_skip, vmm, VmmRun};
use xenkvm_tests::guest::repo_root;

fn xtf_dir() -> Option<PathBuf> {
    let d = repo_root().join("../shared/xtf");
    if d.join("README.md").is_file() {
        return Some(d);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "../shared/xtf is missing in CI: the XTF conformance test cannot run"
    );
    eprintln!("SKIPPED xtf: ../shared/xtf is not present");
    None
}

/// Real Xen's verdicts from the README's table: `| name | VERDICT ... |`.
fn real_xen_verdicts(readme: &str) -> BTreeMap<String, String> {
    let mut v = BTreeMap::new();
    for line in readme.lines().filter(|l| l.trim_start().starts_with('|')) {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() < 4 {
            continue;
        }
        let verdict = cols[2].split_whitespace().next().unwrap_or("");
        if ["SUCCESS", "SKIP", "FAILURE", "ERROR"].contains(&verdict) {
            v.insert(cols[1].to_string(), verdict.to_string());
        }
    }
    v
}

fn verdict(run: &VmmRun) -> Option<&str> {
    run.stdout
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Test result: "))
        .map(|r| r.split_whitespace().next().unwrap_or(r))
}

#[test]
fn every_xtf_kernel_gets_real_xens_verdict() {
    if !kvm_or_skip("every_xtf_kernel_gets_real_xens_verdict") {
        return;
    }
    let Some(dir) = xtf_dir() else { return };
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("read the XTF README");
    let mut want = real_xen_verdicts(&readme);
    assert!(
        want.len() >= 13,
        "the README's table of real Xen's verdicts did not parse: {want:?}"
    );
    // Not runnable on this QEMU (README): XTF's own expectation.
    want.insert("selftest".into(), "SUCCESS".into());
    let mut cases: Vec<(String, String, Option<&str>)> = want
        .iter()
        .filter(|(name, _)| !name.starts_with("pv-iopl"))
        .map(|(name, v)| (name.clone(), v.clone(), None))
        .collect();
    for sub in ["hypercall", "vmassist"] {
        cases.push(("pv-iopl".into(), "SUCCESS".into(), Some(sub)));
    }
    let mut bad = Vec::new();
    let mut table = String::from("test                  real Xen  vmm\n");
    for (name, expect, cmdline) in &cases {
        let kernel = dir.join(format!("test-pv64-{name}"));
        assert!(kernel.is_file(), "no {}", kernel.display());
        let k = kernel.to_str().unwrap();
        let mut args = vec!["run", "-q", k];
        if let Some(c) = cmdline {
            args.extend(["--cmdline", c]);
        }
        let run = vmm(&args);
        let got = verdict(&run).unwrap_or("(none)").to_string();
        let label = match cmdline {
            Some(c) => format!("{name} {c}"),
            None => name.clone(),
        };
        table += &format!("{label:<22}{expect:<10}{got}\n");
        if got != *expect {
            bad.push(format!(
                "{label}: expected {expect}, got {got}\n{}",
                run.dump()
            ));
        }
    }
    eprintln!("{table}");
    assert!(bad.is_empty(), "XTF verdicts differ:\n{}", bad.join("\n\n"));
}

#[test]
fn readme_table_parses() {
    let t = "| test | real Xen verdict | what |\n|---|---|---|\n| example | SUCCESS | x |\n\
             | argo | SKIP (Argo not enabled) | y |\n| selftest | (crashes) | z |\n\
             \n    Test result: SUCCESS | SKIP | FAILURE | ERROR\n";
    let v = real_xen_verdicts(t);
    assert_eq!(v.get("example").map(String::as_str), Some("SUCCESS"));
    assert_eq!(v.get("argo").map(String::as_str), Some("SKIP"));
    assert!(!v.contains_key("selftest") && !v.contains_key("test"));
}
