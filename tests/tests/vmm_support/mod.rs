//! Shared by the `vmm_*` and `conformance_*` tests: the `vmm` binary, the assembly guest, the
//! KVM availability rule, and running `vmm run`.
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use xenkvm_tests::guest::repo_root;
use xenkvm_tests::transcript::{Transcript, TranscriptError};

/// Exit statuses documented in `vmm run --help` (vmm/src/cli.rs).
pub const EXIT_POWEROFF: i32 = 0;
pub const EXIT_CRASH: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_STOPPED: i32 = 3;
pub const EXIT_SETUP: i32 = 4;
pub const EXIT_OTHER_SHUTDOWN: i32 = 5;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether KVM tests can run: in CI a missing /dev/kvm fails loudly; elsewhere the test is
/// skipped with a message.
pub fn kvm_or_skip(test: &str) -> bool {
    let ok = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if ok {
        return true;
    }
    assert!(!ci(), "{test}: /dev/kvm is missing or not usable in CI");
    eprintln!("SKIPPED {test}: /dev/kvm is not available");
    false
}

/// The `target/<profile>` directory this test binary was built into.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// Builds (if needed) and returns the `vmm` binary of this workspace, same profile as the tests.
pub fn vmm_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let profile = profile_dir();
        let target = profile.parent().expect("target dir").to_path_buf();
        let release = profile.file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(repo_root())
            .args(["build", "-p", "vmm", "--bin", "vmm"])
            .env("CARGO_TARGET_DIR", &target);
        if release {
            cmd.arg("--release");
        }
        let out = cmd.output().expect("run cargo build -p vmm");
        assert!(
            out.status.success(),
            "building vmm failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = profile.join("vmm");
        assert!(bin.is_file(), "no {}", bin.display());
        bin
    })
}

/// Assembles and links tests/asm-guest with the system `cc` and `ld`; returns the ELF.
pub fn asm_guest() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| build_asm_guest("asm-guest", |s| s.to_string()))
}

/// tests/asm-guest/pvcpu.S: the PV CPU ABI case by case.
pub fn pvcpu_guest() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| build_asm("pvcpu-guest", "pvcpu.S", |s| s.to_string()))
}

/// tests/asm-guest/exits.S: one kind of guest operation repeated (scripts/bench-exits.sh).
pub fn exits_guest() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| build_asm("exits-guest", "exits.S", |s| s.to_string()))
}

/// tests/asm-guest/flood.S: floods of refused pins and unknown hypercall numbers.
pub fn flood_guest() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| build_asm("flood-guest", "flood.S", |s| s.to_string()))
}

/// The asm guest linked without a PT_NOTE segment: its Xen notes are only in `.note.Xen`.
pub fn asm_guest_section_notes() -> &'static Path {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        build_asm_guest("asm-guest-section-notes", |s| {
            let t = s
                .replace("note PT_NOTE FLAGS(4);", "")
                .replace(":text :note", ":text");
            assert_ne!(t, s, "link.ld changed shape");
            t
        })
    })
}

fn build_asm_guest(name: &str, edit_ld: impl Fn(&str) -> String) -> PathBuf {
    build_asm(name, "guest.S", edit_ld)
}

fn build_asm(name: &str, source: &str, edit_ld: impl Fn(&str) -> String) -> PathBuf {
    let src = repo_root().join("tests/asm-guest");
    let out = profile_dir().join(name);
    std::fs::create_dir_all(&out).expect("create asm-guest output dir");
    let obj = out.join("guest.o");
    let elf = out.join("guest.elf");
    let run = |cmd: &mut Command| {
        let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            o.status.success(),
            "{cmd:?} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    run(Command::new("cc")
        .arg("-c")
        .arg(src.join(source))
        .arg("-o")
        .arg(&obj));
    let ld_script = out.join("link.ld");
    let orig = std::fs::read_to_string(src.join("link.ld")).expect("read link.ld");
    std::fs::write(&ld_script, edit_ld(&orig)).expect("write link.ld");
    run(Command::new("ld")
        .args(["-nostdlib", "-static", "-n", "--build-id=none"])
        .args(["-z", "max-page-size=4096", "--no-warn-rwx-segments", "-T"])
        .arg(&ld_script)
        .arg("-o")
        .arg(&elf)
        .arg(&obj));
    elf
}

/// One `vmm` run.
#[derive(Debug)]
pub struct VmmRun {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub wall: Duration,
}

impl VmmRun {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
    pub fn transcript(&self) -> Result<Transcript, TranscriptError> {
        Transcript::parse(&self.lines())
    }
    pub fn dump(&self) -> String {
        format!(
            "status {:?} after {:.2?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.wall, self.stdout, self.stderr
        )
    }
}

/// Runs `vmm` with `args` (a hung guest is killed after 60 s by `timeout`).
pub fn vmm(args: &[&str]) -> VmmRun {
    vmm_with_timeout(args, 60)
}

/// Runs `vmm` with `args`, killed after `secs` seconds.
pub fn vmm_with_timeout(args: &[&str], secs: u32) -> VmmRun {
    let start = Instant::now();
    let out = Command::new("timeout")
        .arg(secs.to_string())
        .arg(vmm_bin())
        .args(args)
        .output()
        .expect("run vmm");
    VmmRun {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        wall: start.elapsed(),
    }
}

/// Boots Debian's Linux (`vmlinuz`, `initrd`) on the VMM as the Linux tests do: 256 MiB, the
/// given `--policy` and kernel command line, killed after 600 s.
pub fn run_linux(vmlinuz: &Path, initrd: &Path, policy: &str, cmdline: &str) -> VmmRun {
    vmm_with_timeout(
        &[
            "run",
            vmlinuz.to_str().expect("UTF-8 path"),
            "--initrd",
            initrd.to_str().expect("UTF-8 path"),
            "--mem",
            "256",
            "--policy",
            policy,
            "--cmdline",
            cmdline,
        ],
        600,
    )
}
