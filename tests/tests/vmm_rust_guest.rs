//! The project's Rust guest under KVM: `vmm run` with no KERNEL boots the embedded guest, here
//! with `--cmdline scenario=basics` (the default, the demo, is tested in scenarios_matrix.rs);
//! every return code must be real Xen 4.17's (the basic pin sequence in docs/testing.md, and
//! real_xen_basics.rs, which checks the same list against real Xen).

mod vmm_support;

use vmm_support::*;

/// rc of T01..T24 of `scenario=basics` as real Xen 4.17 returns them.
const XEN_RCS: [i64; 24] = [
    -22, 0, 0, -22, -16, 0, 0, // the basic pin sequence (docs/testing.md)
    0, 0, 0, -22, 0, 0, -22, 0, 0, -16, 0, -22, 0, 0, -22, 0, 0,
];
const END: &str = "END basics ops=24 ok=16 failed=8";

#[test]
fn embedded_guest_basics_matches_xens_return_codes() {
    if !kvm_or_skip("embedded_guest_basics_matches_xens_return_codes") {
        return;
    }
    let run = vmm(&["run", "--cmdline", "scenario=basics"]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let t = run
        .transcript()
        .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    assert_eq!(t.rcs(), XEN_RCS, "{}", run.dump());
    assert_eq!(t.end, END);
    // Xen's debug-log lines for the refused pin (docs/testing.md), then our provenance.
    let err = &run.stderr;
    assert!(
        err.contains("Bad type (saw e400000000000001 != exp 2000000000000000) for mfn"),
        "{}",
        run.dump()
    );
    assert!(err.contains("Error -22 while pinning mfn"), "{err}");
    assert!(err.contains("already pinned"), "{err}");
    assert!(
        err.contains("Could not get page type PGT_writable_page"),
        "{err}"
    );
    assert!(err.contains("still mapped RW by L1 mfn"), "{err}");
    assert!(
        err.contains("=== vmm summary: guest powered off ==="),
        "{err}"
    );
}

#[test]
fn basics_with_shuffled_p2m_gives_the_same_transcript() {
    if !kvm_or_skip("basics_with_shuffled_p2m_gives_the_same_transcript") {
        return;
    }
    for seed in ["1", "987654321"] {
        let run = vmm(&[
            "run",
            "--cmdline",
            "scenario=basics",
            "--p2m",
            "shuffle",
            "--seed",
            seed,
        ]);
        assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
        let t = run
            .transcript()
            .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
        assert_eq!(t.rcs(), XEN_RCS, "seed {seed}\n{}", run.dump());
        assert_eq!(t.end, END);
    }
}

#[test]
fn audit_policy_logs_the_stray_mapping_and_allows_the_pin() {
    if !kvm_or_skip("audit_policy_logs_the_stray_mapping_and_allows_the_pin") {
        return;
    }
    let run = vmm(&["run", "--cmdline", "scenario=basics", "--policy", "audit"]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let t = run
        .transcript()
        .unwrap_or_else(|e| panic!("{e}\n{}", run.dump()));
    // T01 pins a frame that is still mapped RW: recorded, then allowed.
    assert_eq!(t.ops[0].rc, 0, "{}", run.dump());
    assert!(run.stderr.contains("audit: tolerated"), "{}", run.dump());
    assert!(
        run.stderr.contains("still mapped RW by L1 mfn"),
        "{}",
        run.dump()
    );
}

#[test]
fn json_log_replays_offline_to_identical_events() {
    if !kvm_or_skip("json_log_replays_offline_to_identical_events") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("vmm-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("basics.jsonl");
    let log_s = log.to_str().unwrap().to_string();
    let run = vmm(&[
        "run",
        "--cmdline",
        "scenario=basics",
        "-q",
        "--p2m",
        "shuffle",
        "--seed",
        "7",
        "--log",
        &log_s,
    ]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let replay = vmm(&["replay", &log_s]);
    assert_eq!(replay.status, Some(0), "{}", replay.dump());
    assert!(
        replay.stdout.contains("every result and event identical"),
        "{}",
        replay.dump()
    );
    // The check can fail: claim the first refused pin succeeded.
    let text = std::fs::read_to_string(&log).unwrap();
    let tampered = text.replacen("\"rc\":-22", "\"rc\":0", 1);
    assert_ne!(text, tampered);
    std::fs::write(&log, tampered).unwrap();
    let replay = vmm(&["replay", &log_s]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(replay.status, Some(1), "{}", replay.dump());
    assert!(replay.stdout.contains("1 differ"), "{}", replay.dump());
}
