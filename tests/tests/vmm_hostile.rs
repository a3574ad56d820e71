//! Issue 11: a hostile guest cannot exhaust the VMM, flood its logs or fool `vmm replay`, and a
//! hostile log cannot crash replay. Guests: tests/asm-guest/flood.S (floods of refused pins and
//! of unknown hypercall numbers) and the embedded guest's `scenario=hostile`. The hostile logs
//! are made here.

mod vmm_support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use vmm_support::*;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vmm-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn count_after(text: &str, key: &str) -> Option<u64> {
    text.split(key)
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn refused_pin_flood_is_rate_limited_on_stderr_but_counted_and_logged_in_full() {
    if !kvm_or_skip("refused_pin_flood_is_rate_limited_on_stderr_but_counted_and_logged_in_full") {
        return;
    }
    let elf = flood_guest().to_str().unwrap().to_string();
    // 100,000 refused pins: 4 lines each without a rate limit.
    let run = vmm(&["run", &elf, "--cmdline", "p"]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    assert!(run.stdout.contains("flood: done"), "{}", run.dump());
    assert_eq!(
        count_after(&run.stderr, "refusals="),
        Some(100_000),
        "{}",
        run.dump()
    );
    let lines = run.stderr.lines().count();
    assert!(
        lines < 400,
        "{lines} stderr lines for 100,000 refusals\n{}",
        run.dump()
    );
    let shown = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("vmm: REFUSED"))
        .count() as u64;
    let suppressed: u64 = run
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("vmm: "))
        .filter_map(|l| l.split_once(" messages suppressed"))
        .map(|(n, _)| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(shown + suppressed, 100_000, "{}", run.dump());

    // With --log every refusal is in the JSON log, and the log replays.
    let log = tmp("pins.jsonl");
    let log_s = log.to_str().unwrap();
    let run = vmm(&["run", &elf, "--cmdline", "q", "-q", "--log", log_s]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let text = std::fs::read_to_string(&log).unwrap();
    let refused = text
        .lines()
        .filter(|l| l.contains("\"event\":\"pin\"") && l.contains("\"rc\":-22"))
        .count();
    assert_eq!(refused, 2000);
    let replay = vmm(&["replay", log_s]);
    std::fs::remove_file(&log).ok();
    assert_eq!(replay.status, Some(0), "{}", replay.dump());
}

#[test]
fn a_million_unknown_numbers_are_counted_not_remembered() {
    if !kvm_or_skip("a_million_unknown_numbers_are_counted_not_remembered") {
        return;
    }
    let elf = flood_guest().to_str().unwrap().to_string();
    for mode in ["n", "v"] {
        let run = vmm(&["run", &elf, "--cmdline", mode]);
        assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
        // The "reported once" set holds 64 names; the other 999,936 calls are only counted.
        assert!(
            run.stderr
                .contains("unsupported: calls=1000000 named=64 not_named=999936"),
            "{}",
            run.dump()
        );
        assert!(run.stderr.lines().count() < 100, "{}", run.dump());
    }
}

/// The brief's measured case: an honest enforce log of the hostile scenario replays
/// identically, COPY_PAGE/CLEAR_PAGE included, with no entry it had to take on trust.
#[test]
fn hostile_scenario_log_replays_identically_page_writes_included() {
    if !kvm_or_skip("hostile_scenario_log_replays_identically_page_writes_included") {
        return;
    }
    let log = tmp("h301.jsonl");
    let log_s = log.to_str().unwrap();
    let run = vmm(&[
        "run",
        "--cmdline",
        "scenario=hostile seed=301 calls=1500",
        "-q",
        "--log",
        log_s,
    ]);
    assert_eq!(run.status, Some(EXIT_POWEROFF), "{}", run.dump());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("\"event\":\"page_write\""),
        "no COPY/CLEAR_PAGE in the run"
    );
    let replay = vmm(&["replay", log_s]);
    assert_eq!(replay.status, Some(0), "{}", replay.dump());
    assert!(
        replay.stdout.contains("every result and event identical\n"),
        "{}",
        replay.dump()
    );
    // Without the page writes replay would have to take entries on trust (the check can fail).
    let hidden = text.replace("\"event\":\"page_write\"", "\"event\":\"flush\"");
    std::fs::write(&log, hidden).unwrap();
    let replay = vmm(&["replay", log_s]);
    assert!(
        replay.stdout.contains("written by the guest itself"),
        "{}",
        replay.dump()
    );
    // A deleted line, a killed run.
    let mut lines: Vec<&str> = text.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains("\"event\":\"mmu_update\""))
        .unwrap();
    lines.remove(i);
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();
    let replay = vmm(&["replay", log_s]);
    assert_eq!(replay.status, Some(1), "{}", replay.dump());
    assert!(
        replay.stdout.contains(&format!("record {i} is missing")),
        "{}",
        replay.dump()
    );
    let cut = &text.as_bytes()[..text.len() * 2 / 3];
    std::fs::write(&log, cut).unwrap();
    let replay = vmm(&["replay", log_s]);
    std::fs::remove_file(&log).ok();
    assert_eq!(replay.status, Some(1), "{}", replay.dump());
    assert!(
        replay
            .stdout
            .contains("no end record: the run did not finish"),
        "{}",
        replay.dump()
    );
}

/// A small, valid log made by hand: 16 frames, then `n` unpins that the log claims
/// succeeded (each a difference: nothing is pinned), then the end record.
fn hand_log(n: u64) -> String {
    let mut s = String::new();
    s += r#"{"rec":0,"event":"domain","log_format":2,"nr_frames":16,"policy":"enforce","rules":{"l1_disallow":0,"linear_pt":false},"regions":[]}"#;
    s += "\n";
    let m2p: Vec<String> = (0..16).map(|i| i.to_string()).collect();
    s += &format!(
        "{{\"rec\":1,\"event\":\"m2p\",\"start\":0,\"m2p\":[{}]}}\n",
        m2p.join(",")
    );
    for i in 0..n {
        s += &format!(
            "{{\"rec\":{},\"seq\":{},\"event\":\"unpin\",\"mfn\":3,\"pfn\":3,\"rc\":0}}\n",
            i + 2,
            i + 1
        );
    }
    s += &format!(
        "{{\"rec\":{},\"event\":\"end\",\"records\":{}}}\n",
        n + 2,
        n + 3
    );
    s
}

fn replay_file(path: &Path) -> VmmRun {
    vmm(&["replay", path.to_str().unwrap()])
}

fn one_error_line(run: &VmmRun, needle: &str) {
    assert_eq!(run.status, Some(EXIT_SETUP), "{}", run.dump());
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.dump());
    assert!(
        lines[0].starts_with("vmm: replay: ") && lines[0].contains(needle),
        "{needle}\n{}",
        run.dump()
    );
}

#[test]
fn replay_answers_any_input_with_one_line_and_never_panics() {
    let p = tmp("input.jsonl");
    std::fs::write(&p, "").unwrap();
    one_error_line(&replay_file(&p), "is empty");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&p, &noise).unwrap();
    one_error_line(&replay_file(&p), "not JSON");
    one_error_line(&replay_file(Path::new("/dev/zero")), "longer than");
    one_error_line(&replay_file(Path::new("/nonexistent.jsonl")), "cannot open");
    one_error_line(&replay_file(&std::env::temp_dir()), "cannot read");
    // 10 GB (sparse: zeros): streamed, so it costs nothing and ends at the line limit.
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(10 << 30).unwrap();
    drop(f);
    one_error_line(&replay_file(&p), "line 1 is longer than");
    // Edited sizes: refused before anything is allocated.
    for (from, to) in [
        ("\"nr_frames\":16", "\"nr_frames\":1099511627776"),
        ("\"nr_frames\":16", "\"nr_frames\":18446744073709551615"),
    ] {
        std::fs::write(&p, hand_log(1).replacen(from, to, 1)).unwrap();
        one_error_line(&replay_file(&p), "out of range");
    }
    std::fs::write(&p, hand_log(1).replacen("\"mfn\":3", "\"mfn\":\"3\"", 1)).unwrap();
    one_error_line(&replay_file(&p), "line 3: \"mfn\" is not an unsigned");
    std::fs::remove_file(&p).ok();
}

#[test]
fn replay_reports_differences_and_damage_with_exit_1() {
    let p = tmp("hand.jsonl");
    std::fs::write(&p, hand_log(0)).unwrap();
    let run = replay_file(&p);
    assert_eq!(run.status, Some(0), "{}", run.dump());
    std::fs::write(&p, hand_log(3)).unwrap();
    let run = replay_file(&p);
    assert_eq!(run.status, Some(1), "{}", run.dump());
    assert!(run.stdout.contains("3 differ"), "{}", run.dump());
    // Two operations swapped: reported as damage.
    let text = hand_log(2);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(2, 3);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let run = replay_file(&p);
    assert_eq!(run.status, Some(1), "{}", run.dump());
    assert!(
        run.stdout
            .contains("log damaged: line 4: record 2 again or out of order"),
        "{}",
        run.dump()
    );
    // The end record before the m2p: not a log replay can start.
    let text = hand_log(0);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(1, 2);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let run = replay_file(&p);
    std::fs::remove_file(&p).ok();
    assert_eq!(run.status, Some(EXIT_SETUP), "{}", run.dump()); // the m2p must come first
}

/// `vmm replay LOG | head`: a closed stdout (or stderr) ends the output quietly; the status
/// is the replay's.
#[test]
fn replay_into_a_closed_pipe_ends_quietly() {
    let p = tmp("pipe.jsonl");
    std::fs::write(&p, hand_log(500)).unwrap();
    for (closed, want) in [("stdout", 1), ("stderr", 1)] {
        let mut cmd = Command::new(vmm_bin());
        cmd.arg("replay").arg(&p).stdin(Stdio::null());
        let mut child = if closed == "stdout" {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()
        } else {
            cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()
        }
        .unwrap();
        // Close our end before the child writes anything.
        if closed == "stdout" {
            drop(child.stdout.take());
        } else {
            drop(child.stderr.take());
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{closed} closed: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    // The error path with a closed stderr: exit 4, not a panic (101).
    let mut child = Command::new(vmm_bin())
        .args(["replay", "/dev/zero"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(EXIT_SETUP));
    std::fs::remove_file(&p).ok();
}

/// Replay streams: 512 MB of records through a pipe under a 256 MB address-space limit.
#[test]
fn replay_streams_a_log_larger_than_its_memory_limit() {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 262144 && exec {} replay /dev/stdin",
            vmm_bin().display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let head = hand_log(0);
        let head: Vec<&str> = head.lines().collect();
        writeln!(input, "{}\n{}", head[0], head[1]).unwrap();
        let hex = "ab".repeat(4096);
        let n = (512u64 << 20) / (hex.len() as u64 + 60);
        let mut buf = String::new();
        for i in 0..n {
            buf += &format!(
                "{{\"rec\":{},\"event\":\"guest_write\",\"gpa\":{},\"hex\":\"{hex}\"}}\n",
                i + 2,
                (i % 16) * 4096
            );
            if buf.len() > 1 << 20 {
                input.write_all(buf.as_bytes()).unwrap();
                buf.clear();
            }
        }
        buf += &format!(
            "{{\"rec\":{},\"event\":\"end\",\"records\":{}}}\n",
            n + 2,
            n + 3
        );
        input.write_all(buf.as_bytes()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("every result and event identical"),
        "{stdout}"
    );
}

/// An mmap failure says why: the OS error and the limit in force, not "needs 0 MiB".
#[test]
fn guest_memory_failure_names_the_os_error_and_the_limit() {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 4000000 && exec {} run --mem 8192",
            vmm_bin().display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_SETUP), "{err}");
    assert!(
        err.contains("cannot map 8192 MiB of guest memory")
            && err.contains("os error 12")
            && err.contains("RLIMIT_AS 3906 MiB"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
