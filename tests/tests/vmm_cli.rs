//! `vmm` command-line errors: one clear line each and the documented exit status, never a panic.

mod vmm_support;

use vmm_support::*;

fn one_line_error(run: &VmmRun, needle: &str) {
    assert_eq!(run.status, Some(EXIT_SETUP), "{}", run.dump());
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line\n{}", run.dump());
    assert!(
        lines[0].starts_with("vmm: ") && lines[0].contains(needle),
        "{}",
        run.dump()
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.dump());
}

#[test]
fn missing_kernel_file() {
    let run = vmm(&["run", "/nonexistent/kernel.elf"]);
    one_line_error(&run, "cannot read kernel /nonexistent/kernel.elf");
}

#[test]
fn not_an_elf() {
    let dir = std::env::temp_dir().join(format!("vmm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("kernel.txt");
    std::fs::write(&f, "this is not a kernel\n").unwrap();
    let run = vmm(&["run", f.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    one_line_error(&run, "not an ELF file");
}

#[test]
fn dev_null_is_not_an_elf() {
    one_line_error(&vmm(&["run", "/dev/null"]), "/dev/null: not an ELF file");
}

#[test]
fn an_elf_without_xen_notes_is_refused() {
    // The vmm binary itself: a valid x86_64 ELF, but no Xen PV kernel.
    let bin = vmm_bin().to_str().unwrap().to_string();
    one_line_error(&vmm(&["run", &bin]), "not a Xen PV kernel");
}

#[test]
fn missing_initrd() {
    let elf = asm_guest().to_str().unwrap().to_string();
    let run = vmm(&["run", &elf, "--initrd", "/nonexistent/initrd.gz"]);
    one_line_error(&run, "cannot read initrd /nonexistent/initrd.gz");
    let run = vmm(&["run", &elf, "--initrd", "/"]);
    one_line_error(&run, "cannot read initrd /");
}

#[test]
fn broken_bzimages_are_refused() {
    let dir = std::env::temp_dir().join(format!("vmm-cli-bz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // "HdrS" at 0x202, but the file ends inside the setup header.
    let mut short = vec![0u8; 0x240];
    short[0x202..0x206].copy_from_slice(b"HdrS");
    let f = dir.join("short");
    std::fs::write(&f, &short).unwrap();
    let run = vmm(&["run", f.to_str().unwrap()]);
    one_line_error(&run, "truncated bzImage");
    // Boot protocol 2.04: no payload fields.
    let mut old = vec![0u8; 0x1000];
    old[0x202..0x206].copy_from_slice(b"HdrS");
    old[0x206..0x208].copy_from_slice(&0x0204u16.to_le_bytes());
    std::fs::write(&f, &old).unwrap();
    let run = vmm(&["run", f.to_str().unwrap()]);
    one_line_error(&run, "boot protocol 2.04");
    // A payload that is an XZ header followed by garbage.
    let mut bad = old.clone();
    bad[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    bad[0x1f1] = 1; // payload area starts at 2 * 512
    bad[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
    bad[0x24c..0x250].copy_from_slice(&0x100u32.to_le_bytes());
    bad[0x400..0x406].copy_from_slice(&[0xfd, b'7', b'z', b'X', b'Z', 0]);
    bad[0x4fc..0x500].copy_from_slice(&0x1000u32.to_le_bytes());
    std::fs::write(&f, &bad).unwrap();
    let run = vmm(&["run", f.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    one_line_error(&run, "corrupt xz payload");
}

#[test]
fn too_little_memory() {
    // The asm guest's initial mapping is 4 MiB (Xen's rounding); 2 MiB cannot hold it.
    let elf = asm_guest().to_str().unwrap().to_string();
    one_line_error(&vmm(&["run", &elf, "--mem", "2"]), "too little memory");
}

#[test]
fn usage_errors_and_help() {
    let run = vmm(&["run", "--policy", "lenient"]);
    assert_eq!(run.status, Some(EXIT_USAGE), "{}", run.dump());
    let help = vmm(&["run", "--help"]);
    assert_eq!(help.status, Some(0), "{}", help.dump());
    for needle in [
        "Exit status",
        "--p2m",
        "--policy",
        "--log",
        "--mem",
        "--cmdline",
        "--timeout",
        "ring-0",
        "ended from outside",
    ] {
        assert!(
            help.stdout.contains(needle),
            "--help lacks {needle:?}\n{}",
            help.stdout
        );
    }
}

#[test]
fn missing_dev_kvm() {
    // Hide /dev/kvm in a private mount namespace (needs root; skipped with a message otherwise).
    let elf = asm_guest().to_str().unwrap().to_string();
    let script = format!(
        "mount -t tmpfs none /dev && exec {} run {elf}",
        vmm_bin().display()
    );
    let probe = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", "mount -t tmpfs none /mnt"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!(
            "SKIPPED missing_dev_kvm: cannot make a private mount namespace (unshare needs root)"
        );
        return;
    }
    let out = std::process::Command::new("unshare")
        .args(["--mount", "sh", "-c", &script])
        .output()
        .unwrap();
    let run = VmmRun {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        wall: std::time::Duration::ZERO,
    };
    one_line_error(&run, "cannot open /dev/kvm");
}

/// A guest that never shuts down: `--timeout` ends the run with status 6, the summary and a
/// complete log; so do SIGINT and SIGTERM.
#[test]
fn timeout_and_signals_end_a_spinning_guest_with_a_summary() {
    if !vmm_support::kvm_or_skip("timeout_and_signals_end_a_spinning_guest_with_a_summary") {
        return;
    }
    let elf = vmm_support::asm_guest().to_str().unwrap().to_string();
    let dir = std::env::temp_dir().join(format!("vmm-timeout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("run.jsonl");
    let run = vmm_support::vmm(&[
        "run",
        &elf,
        "--cmdline",
        "l",
        "--timeout",
        "2",
        "--log",
        log.to_str().unwrap(),
    ]);
    assert_eq!(run.status, Some(6), "{}", run.dump());
    assert!(
        run.stderr.contains("the --timeout elapsed"),
        "{}",
        run.dump()
    );
    assert!(run.stderr.contains("=== vmm summary"), "{}", run.dump());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().last().unwrap_or("").contains("\"end\""),
        "no end record"
    );
    for (sig, word) in [(2, "SIGINT"), (15, "SIGTERM")] {
        let child = std::process::Command::new(vmm_support::vmm_bin())
            .args(["run", &elf, "--cmdline", "l"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(800));
        let kill = std::process::Command::new("kill")
            .args([format!("-{sig}"), child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{word}: {err}");
        assert!(
            err.contains(word) && err.contains("=== vmm summary"),
            "{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
