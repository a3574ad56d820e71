//! Conformance: the same guest images on real Xen 4.17 (dom0 in QEMU) and on our VMM must give
//! identical transcripts. Real Xen is the ground truth.

mod vmm_support;

use vmm_support::*;
use xenkvm_tests::guest::guest_elf;
use xenkvm_tests::real_xen::{qemu_or_skip, run_on_xen, XenStatus};
use xenkvm_tests::transcript::diff;

#[test]
fn basics_transcript_identical_on_real_xen_and_vmm() {
    if !qemu_or_skip("basics_transcript_identical_on_real_xen_and_vmm")
        || !kvm_or_skip("basics_transcript_identical_on_real_xen_and_vmm")
    {
        return;
    }
    let elf = guest_elf();
    let xen = run_on_xen(&elf, "scenario=basics");
    assert_eq!(xen.status, XenStatus::Halted, "{}", xen.dump());
    let xt = xen
        .transcript()
        .unwrap_or_else(|e| panic!("{e}\n{}", xen.dump()));
    let path = elf.to_str().unwrap();
    for extra in [&[][..], &["--p2m", "shuffle"][..]] {
        let mut args = vec!["run", path, "--cmdline", "scenario=basics"];
        args.extend_from_slice(extra);
        let run = vmm(&args);
        assert_eq!(
            run.status,
            Some(EXIT_POWEROFF),
            "{:?}\n{}",
            extra,
            run.dump()
        );
        let vt = run
            .transcript()
            .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
        if let Some(d) = diff("real Xen", &xt, "vmm", &vt) {
            panic!("transcripts differ ({extra:?}):\n{d}\n{}", run.stderr);
        }
        eprintln!(
            "basics {extra:?}: real Xen {:.2?}, vmm {:.2?}, {} identical lines",
            xen.wall,
            run.wall,
            xt.lines().len()
        );
    }
}

#[test]
fn asm_guest_console_identical_on_real_xen_and_vmm() {
    if !qemu_or_skip("asm_guest_console_identical_on_real_xen_and_vmm")
        || !kvm_or_skip("asm_guest_console_identical_on_real_xen_and_vmm")
    {
        return;
    }
    let elf = asm_guest();
    let xen = run_on_xen(elf, "hello conformance");
    assert_eq!(xen.status, XenStatus::Halted, "{}", xen.dump());
    let run = vmm(&[
        "run",
        elf.to_str().unwrap(),
        "--cmdline",
        "hello conformance",
    ]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let console: Vec<&str> = run.stdout.lines().collect();
    assert!(console.len() > 10, "{}", run.dump());
    assert_eq!(xen.guest_lines, console, "real Xen vs vmm\n{}", run.dump());
}

#[test]
fn long_batches_get_the_same_results_on_real_xen_and_vmm() {
    if !qemu_or_skip("long_batches_get_the_same_results_on_real_xen_and_vmm")
        || !kvm_or_skip("long_batches_get_the_same_results_on_real_xen_and_vmm")
    {
        return;
    }
    // Mode `b`: batches longer than the VMM's preemption budget. Where each side preempts
    // differs; rc and `done` ("B" lines) must not.
    let elf = asm_guest();
    let xen = run_on_xen(elf, "b");
    assert_eq!(xen.status, XenStatus::Halted, "{}", xen.dump());
    let run = vmm(&["run", "-q", elf.to_str().unwrap(), "--cmdline", "b"]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let b = |lines: Vec<&str>| -> Vec<String> {
        lines
            .into_iter()
            .filter(|l| l.starts_with('B'))
            .map(str::to_string)
            .collect()
    };
    let on_xen = b(xen.guest_lines.iter().map(String::as_str).collect());
    assert_eq!(on_xen.len(), 12, "{}", xen.dump());
    assert_eq!(on_xen, b(run.stdout.lines().collect()), "{}", run.dump());
}

#[test]
fn hostile_hypercalls_get_the_same_answers_on_real_xen_and_vmm() {
    if !qemu_or_skip("hostile_hypercalls_get_the_same_answers_on_real_xen_and_vmm")
        || !kvm_or_skip("hostile_hypercalls_get_the_same_answers_on_real_xen_and_vmm")
    {
        return;
    }
    // Mode `h`: 1000 pseudo-random hypercalls, one "H <nr> rc=<rc>" line each.
    let elf = asm_guest();
    let xen = run_on_xen(elf, "h");
    assert_eq!(xen.status, XenStatus::Halted, "{}", xen.dump());
    let run = vmm(&["run", "-q", elf.to_str().unwrap(), "--cmdline", "h"]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let console: Vec<&str> = run.stdout.lines().collect();
    let calls = console.iter().filter(|l| l.starts_with("H ")).count();
    assert_eq!(calls, 1000, "{}", run.dump());
    let differ: Vec<String> = xen
        .guest_lines
        .iter()
        .zip(&console)
        .enumerate()
        .filter(|(_, (x, v))| x.as_str() != **v)
        .map(|(i, (x, v))| format!("line {}: real Xen {x:?}, vmm {v:?}", i + 1))
        .collect();
    assert!(
        differ.is_empty() && xen.guest_lines.len() == console.len(),
        "{} of {} lines differ:\n{}",
        differ.len(),
        console.len(),
        differ.join("\n")
    );
}
