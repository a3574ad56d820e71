//! Booting a guest as dom0 of real Xen 4.17 under QEMU (`scripts/xen-qemu.sh`).
//!
//! ```no_run
//! use xenkvm_tests::{guest::guest_elf, real_xen};
//! if real_xen::qemu_or_skip("my_test") {
//!     let run = real_xen::run_on_xen(&guest_elf(), "scenario=basics");
//!     assert_eq!(run.status, real_xen::XenStatus::Halted, "{}", run.dump());
//!     let t = run.transcript().expect("transcript");
//! }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::guest::repo_root;
use crate::transcript::{Transcript, TranscriptError};

/// How a real-Xen boot ended (the exit status of `scripts/xen-qemu.sh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XenStatus {
    /// dom0 powered off (`Hardware Dom0 halted`).
    Halted,
    /// dom0 crashed (guest panic, `SHUTDOWN_crash`, or a fault Xen killed it for).
    Crashed,
    /// Xen itself panicked (e.g. it refused to build dom0 from the ELF).
    XenPanic,
    /// Nothing ended the run before `XEN_QEMU_TIMEOUT` (default 60 s).
    Timeout,
    /// QEMU missing, the Xen download failed, or bad arguments.
    SetupError,
    /// QEMU exited before dom0 halted.
    QemuExited,
    /// Any other exit status of the script.
    Other(i32),
}

impl XenStatus {
    fn from_code(code: Option<i32>) -> XenStatus {
        match code {
            Some(0) => XenStatus::Halted,
            Some(1) => XenStatus::Crashed,
            Some(2) => XenStatus::XenPanic,
            Some(3) => XenStatus::Timeout,
            Some(4) => XenStatus::SetupError,
            Some(5) => XenStatus::QemuExited,
            Some(c) => XenStatus::Other(c),
            None => XenStatus::Other(-1),
        }
    }
}

/// Everything one real-Xen boot produced.
#[derive(Clone, Debug)]
pub struct XenRun {
    pub status: XenStatus,
    /// The guest's console lines.
    pub guest_lines: Vec<String>,
    /// Xen's own lines ("(XEN) ..." and its banner), without the script's "xen| " marker.
    pub xen_lines: Vec<String>,
    /// The script's stderr (its status line, setup errors).
    pub stderr: String,
    /// Wall time of the whole run, QEMU start to kill.
    pub wall: Duration,
}

impl XenRun {
    /// The scenario transcript (`T<nn> ... rc=<rc>` lines and the `END` line) of the guest.
    pub fn transcript(&self) -> Result<Transcript, TranscriptError> {
        Transcript::parse(&self.guest_lines)
    }

    /// Everything, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "status {:?} after {:.2?}\n--- guest ---\n{}\n--- xen (last 30 lines) ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.wall,
            self.guest_lines.join("\n"),
            self.xen_lines[self.xen_lines.len().saturating_sub(30)..].join("\n"),
            self.stderr
        )
    }
}

/// Whether `qemu-system-x86_64` is on PATH.
pub fn qemu_available() -> bool {
    Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Whether the real-Xen test `test` can run. In CI (`CI=true`) a missing QEMU panics; outside
/// CI it prints a clear skip message and returns false. Xen itself is fetched on demand by
/// `xen-qemu.sh`; a failed fetch is a test failure, not a skip.
pub fn qemu_or_skip(test: &str) -> bool {
    if qemu_available() {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "{test}: qemu-system-x86_64 is missing in CI (install qemu-system-x86)"
    );
    eprintln!("SKIPPED {test}: qemu-system-x86_64 not installed (apt-get install qemu-system-x86)");
    false
}

/// Knobs for [`run_on_xen_with`]; `Default` is what [`run_on_xen`] uses (the environment's
/// `XEN_QEMU_TIMEOUT`/`XEN_ELF`, else 60 s and the cached Debian 4.17 release build).
#[derive(Clone, Debug, Default)]
pub struct XenOptions {
    /// Kill the run after this long (whole seconds, rounded up).
    pub timeout: Option<Duration>,
    /// Boot this hypervisor instead (e.g. a debug build that logs why hypercalls fail).
    pub xen_elf: Option<PathBuf>,
    /// Extra words for Xen's command line.
    pub xen_args: Option<String>,
}

/// Boots `elf` as dom0 of real Xen 4.17 in QEMU with guest command line `cmdline` and waits
/// for the end (halt, crash, Xen panic or timeout). Safe to call from concurrent tests.
pub fn run_on_xen(elf: &Path, cmdline: &str) -> XenRun {
    run_on_xen_with(elf, cmdline, &XenOptions::default())
}

/// [`run_on_xen`] with explicit [`XenOptions`].
pub fn run_on_xen_with(elf: &Path, cmdline: &str, opts: &XenOptions) -> XenRun {
    let script = repo_root().join("scripts/xen-qemu.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(elf).arg(cmdline);
    if let Some(t) = opts.timeout {
        let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
        cmd.env("XEN_QEMU_TIMEOUT", secs.max(1).to_string());
    }
    if let Some(x) = &opts.xen_elf {
        cmd.env("XEN_ELF", x);
    }
    if let Some(a) = &opts.xen_args {
        cmd.env("XEN_EXTRA_ARGS", a);
    }
    run_xen_command(cmd)
}

/// Runs `cmd`, a `scripts/xen-qemu.sh` invocation or a wrapper of it (`xen-qemu-linux.sh`),
/// and sorts its output into a [`XenRun`].
pub fn run_xen_command(mut cmd: Command) -> XenRun {
    let start = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let wall = start.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (mut guest_lines, mut xen_lines) = (Vec::new(), Vec::new());
    for line in stdout.lines() {
        match line.strip_prefix("xen| ") {
            Some(x) => xen_lines.push(x.to_string()),
            None => guest_lines.push(line.to_string()),
        }
    }
    XenRun {
        status: XenStatus::from_code(out.status.code()),
        guest_lines,
        xen_lines,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        wall,
    }
}
