//! The assembly guest (tests/asm-guest) under KVM: the builder, the hypercall server, the
//! failure modes and their exit statuses, and the JSON log.
//!
//! Expected console lines are what real Xen 4.17 printed for the same image (run it with
//! `scripts/xen-qemu.sh`; `conformance_asm_guest` in conformance_basics.rs re-checks it live).

mod vmm_support;

use vmm_support::*;

/// Console of the default run on real Xen 4.17 (dom0 in QEMU), after the cmdline line.
const EXPECTED: &[&str] = &[
    "A00 xen_version rc=0000000000040011",
    "A01 pin_l1 page still mapped RW rc=ffffffffffffffea",
    "A02 update_va_mapping page -> RO rc=0000000000000000",
    "A03 pin_l1 page mapped RO rc=0000000000000000",
    "A04 unpin page rc=0000000000000000",
    "A05 update_va_mapping page -> RW rc=0000000000000000",
    "A06 read through VA remapped to page2 rc=5eed5eed5eed5eed",
    "A07 update_va_mapping VA back to page rc=0000000000000000",
    "A08 hypercall 99 rc=ffffffffffffffda",
    "A09 mmu_update domid 5 rc=fffffffffffffffd",
    "A10 mmuext_op unmapped ops, wild count rc=fffffffffffffff2",
    "A10 done rc=0000000000000000",
    "A11 multicall [xen_version, multicall, sched_op yield] rc=0000000000000000",
    "A11 entry 0 rc=0000000000040011",
    "A11 entry 1 rc=ffffffffffffffea",
    "A11 entry 2 rc=0000000000000000",
    "asm-guest: bye",
];

fn a_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| l.starts_with('A') || l.starts_with("asm-guest: bye"))
        .collect()
}

/// The VMM's explanation of the refused pin (where the RW mapping lives).
fn provenance_line(run: &VmmRun) -> &str {
    run.stderr
        .lines()
        .find(|l| l.starts_with("provenance: "))
        .unwrap_or_else(|| panic!("no provenance line\n{}", run.dump()))
}

#[test]
fn asm_guest_boots_and_its_hypercalls_get_xens_answers() {
    if !kvm_or_skip("asm_guest_boots_and_its_hypercalls_get_xens_answers") {
        return;
    }
    let elf = asm_guest().to_str().unwrap().to_string();
    let run = vmm(&["run", &elf, "--cmdline", "hello world"]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    assert!(run
        .stdout
        .starts_with("asm-guest: hello from a Xen PV guest in assembly\n"));
    assert!(
        run.stdout.contains("asm-guest: cmdline=hello world\n"),
        "{}",
        run.dump()
    );
    assert_eq!(a_lines(&run.stdout), EXPECTED, "{}", run.dump());
    // The SSE2 cases all ran (their values are checked against real Xen by the conformance test).
    let sse = run.stdout.lines().filter(|l| l.starts_with('S')).count();
    assert_eq!(sse, 42, "{}", run.dump());
    // The refused pin is explained: Xen's lines, then where the RW mapping lives.
    assert!(
        run.stderr.contains("Error -22 while pinning mfn"),
        "{}",
        run.dump()
    );
    let prov = provenance_line(&run);
    assert!(
        prov.contains("still mapped RW by L1 mfn") && prov.contains("[kernel image]"),
        "{prov}"
    );
    assert!(
        run.stderr
            .contains("=== vmm summary: guest powered off ==="),
        "{}",
        run.dump()
    );
    assert!(
        run.stderr.contains("mmu: pins=1 unpins=1 pte_updates=4"),
        "{}",
        run.dump()
    );
}

#[test]
fn asm_guest_with_shuffled_p2m_sees_the_same_answers() {
    if !kvm_or_skip("asm_guest_with_shuffled_p2m_sees_the_same_answers") {
        return;
    }
    let elf = asm_guest().to_str().unwrap().to_string();
    let run = vmm(&["run", &elf, "--p2m", "shuffle", "--seed", "12345"]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    assert_eq!(a_lines(&run.stdout), EXPECTED, "{}", run.dump());
    assert!(
        run.stderr.contains("p2m shuffle seed 12345"),
        "{}",
        run.dump()
    );
    // The frames really moved: the refused frame is not at its identity mfn.
    let prov = provenance_line(&run);
    let (mfn, pfn) = prov
        .split_once("mfn ")
        .and_then(|(_, r)| r.split_once(" (pfn "))
        .map(|(m, r)| (m.to_string(), r.split(')').next().unwrap().to_string()))
        .unwrap();
    assert_ne!(
        u64::from_str_radix(&mfn, 16).unwrap(),
        u64::from_str_radix(&pfn, 16).unwrap(),
        "{prov}"
    );
}

/// Mode `b` (long batches): rc and `done` as Xen 4.17 gives them, wherever it preempts —
/// `done` counts across continuations, starts from the guest's value when the guest sets
/// MMU_UPDATE_PREEMPTED itself, and stops at a failing request (conformance_basics.rs checks
/// the same lines live on real Xen).
pub const BATCH_EXPECTED: &[&str] = &[
    "B01 mmu_update 700 machphys rc=0000000000000000",
    "B01 done rc=00000000000002bc",
    "B02 mmu_update 300|PREEMPTED, done 0x55 rc=0000000000000000",
    "B02 done rc=0000000000000181",
    "B03 mmu_update 700, request 600 bad rc=ffffffffffffffea",
    "B03 done rc=0000000000000258",
    "B04 mmuext_op 600 tlb_flush_local rc=0000000000000000",
    "B04 done rc=0000000000000258",
    "B05 multicall [mmu_update 700, xen_version] rc=0000000000000000",
    "B05 entry 0 rc=0000000000000000",
    "B05 done rc=00000000000002bc",
    "B05 entry 1 rc=0000000000040011",
];

#[test]
fn long_batches_run_as_continuations_with_xens_results() {
    if !kvm_or_skip("long_batches_run_as_continuations_with_xens_results") {
        return;
    }
    let elf = asm_guest().to_str().unwrap().to_string();
    let run = vmm(&["run", &elf, "--cmdline", "b"]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let b: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with('B')).collect();
    assert_eq!(b, BATCH_EXPECTED, "{}", run.dump());
    // The batches really were preempted: the multicall entry holds its sub-call's continuation
    // (count | MMU_UPDATE_PREEMPTED), and the summary counts continuations (at least one per
    // long call) while every call is counted once.
    let count_arg = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("b05 entry 0 count arg rc="))
        .unwrap_or_else(|| panic!("no count line\n{}", run.dump()));
    let count_arg = u64::from_str_radix(count_arg, 16).expect("hex");
    assert_ne!(count_arg & (1 << 31), 0, "{}", run.dump());
    assert!((count_arg & 0x7fff_ffff) < 700, "{}", run.dump());
    let summary = run
        .stderr
        .lines()
        .find(|l| l.starts_with("hypercalls: "))
        .unwrap_or_else(|| panic!("no summary\n{}", run.dump()));
    let conts: u64 = summary
        .split("; ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no continuation count in {summary:?}"));
    assert!(conts >= 5, "{summary}");
    for n in [
        "mmu_update=4",
        "mmuext_op=1",
        "multicall=1",
        "xen_version=1",
    ] {
        assert!(summary.contains(n), "{n} in {summary:?}");
    }
}

#[test]
fn asm_guest_failure_modes_stop_with_a_report_and_status() {
    if !kvm_or_skip("asm_guest_failure_modes_stop_with_a_report_and_status") {
        return;
    }
    let elf = asm_guest().to_str().unwrap().to_string();
    let cases: &[(&str, i32, &[&str])] = &[
        ("c", EXIT_CRASH, &["SHUTDOWN_crash"]),
        ("r", EXIT_OTHER_SHUTDOWN, &["reboot"]),
        // At CPL 3 as on Xen: a fault with no trap table crashes the domain; privileged
        // instructions raise #GP (emulated where Xen emulates them: `mov cr0` may not touch
        // WP, `mov cr3` must name a validated L4), and without a handler that is a crash too.
        (
            "f",
            EXIT_CRASH,
            &[
                "Unhandled: vec 14, #PF[0002]",
                "<do_fault+0x0>",
                "CR2 0x0000000000001000",
                "last hypercall: console_io",
            ],
        ),
        (
            "o",
            EXIT_CRASH,
            &["Unhandled: vec 13, #GP[0000]", "<do_out"],
        ),
        ("w", EXIT_CRASH, &["Unhandled: vec 13, #GP[0000]", "<do_wp"]),
        (
            "x",
            EXIT_CRASH,
            &["Unhandled: vec 13, #GP[0000]", "<do_cr3"],
        ),
    ];
    for (mode, status, needles) in cases {
        let run = vmm(&["run", "-q", &elf, "--cmdline", mode]);
        assert_eq!(run.status, Some(*status), "mode {mode}\n{}", run.dump());
        for n in *needles {
            assert!(
                run.stderr.contains(n),
                "mode {mode}: no {n:?}\n{}",
                run.dump()
            );
        }
    }
}

#[test]
fn json_log_has_one_object_per_operation_and_refusal() {
    if !kvm_or_skip("json_log_has_one_object_per_operation_and_refusal") {
        return;
    }
    let elf = asm_guest().to_str().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("vmm-log-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("run.jsonl");
    let run = vmm(&["run", "-q", &elf, "--log", log.to_str().unwrap()]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let recs: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    let ev = |r: &serde_json::Value| r["event"].as_str().unwrap_or("").to_string();
    assert_eq!(ev(&recs[0]), "domain");
    assert_eq!(recs[0]["nr_frames"], 64 * 256);
    assert_eq!(ev(recs.last().unwrap()), "end");
    assert_eq!(recs.last().unwrap()["exit_status"], 0);
    // The builder's tables were recorded before the validator saw them (offline replay).
    assert!(recs.iter().any(|r| ev(r) == "frames"));
    // The guest's pins: one refused with provenance, one accepted; then the unpin.
    let pins: Vec<_> = recs.iter().filter(|r| ev(r) == "pin").collect();
    assert_eq!(pins.len(), 2, "{text}");
    assert_eq!(pins[0]["rc"], -22);
    assert_eq!(pins[0]["hypercall"], "mmuext_op");
    let v = &pins[0]["violations"][0];
    assert_eq!(v["kind"], "stray_writable");
    assert_eq!(v["mappings"][0]["vas"][0]["region"], "kernel image");
    assert_eq!(pins[1]["rc"], 0);
    assert_eq!(recs.iter().filter(|r| ev(r) == "unpin").count(), 1);
    assert_eq!(
        recs.iter().filter(|r| ev(r) == "update_va_mapping").count(),
        4
    );
    // VMM-level refusals are there too.
    let refusals: Vec<i64> = recs
        .iter()
        .filter(|r| ev(r) == "vmm_refusal")
        .map(|r| r["rc"].as_i64().unwrap())
        .collect();
    assert_eq!(refusals, [-38, -3, -22], "{text}");
    assert!(recs
        .iter()
        .any(|r| ev(r) == "efault" && r["hypercall"] == "mmuext_op"));
}

#[test]
fn xen_notes_found_in_the_note_section_without_pt_note() {
    if !kvm_or_skip("xen_notes_found_in_the_note_section_without_pt_note") {
        return;
    }
    let elf = asm_guest_section_notes().to_str().unwrap().to_string();
    let phdrs = std::process::Command::new("readelf")
        .args(["-lW", &elf])
        .output();
    if let Ok(o) = phdrs {
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("NOTE"),
            "still has PT_NOTE"
        );
    }
    let run = vmm(&["run", &elf, "--cmdline", "hello"]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    assert!(
        run.stderr.contains("notes from .note.Xen"),
        "{}",
        run.dump()
    );
    assert_eq!(a_lines(&run.stdout), EXPECTED, "{}", run.dump());
}

#[test]
fn hostile_guest_cannot_hurt_the_vmm_and_its_log_replays() {
    if !kvm_or_skip("hostile_guest_cannot_hurt_the_vmm_and_its_log_replays") {
        return;
    }
    let elf = asm_guest().to_str().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("vmm-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("hostile.jsonl");
    let log_s = log.to_str().unwrap().to_string();
    let run = vmm(&["run", &elf, "--cmdline", "h", "--log", &log_s]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    assert!(
        run.stdout.contains("asm-guest: hostile run survived"),
        "{}",
        run.dump()
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.dump());
    // Refusals of every kind were logged, and the summary counted them.
    let refusals: u64 = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("refusals="))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no refusals count\n{}", run.dump()));
    assert!(refusals > 100, "{}", run.dump());
    let replay = vmm(&["replay", &log_s]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(replay.status, Some(0), "{}", replay.dump());
}
