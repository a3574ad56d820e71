//! Debian's Linux kernel and the project's initramfs, for the Linux boot tests.
//!
//! ```no_run
//! use xenkvm_tests::linux;
//! if let Some(k) = linux::linux_or_skip("my_test") {
//!     let initrd = linux::initramfs();
//!     let run = linux::run_linux_on_xen(&k.vmlinuz, &initrd);
//!     assert_eq!(linux::result_lines(&run.guest_lines), [linux::RESULT_PASS]);
//! }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::guest::{repo_root, ScriptRun};
use crate::real_xen::{run_xen_command, XenRun};

/// The line the initramfs's /init (linux/init.sh) prints when every check passed. Its counts
/// are fixed, so the same line is expected from every hypervisor.
pub const RESULT_PASS: &str =
    "XENKVM-INIT forks=200 tmpfs=ok mmap=ok rounds=64 pages=64 vector=ok result=PASS";

/// The files `scripts/fetch-linux.sh` caches.
#[derive(Clone, Debug)]
pub struct LinuxFiles {
    /// The bzImage (`/boot/vmlinuz-<release>`).
    pub vmlinuz: PathBuf,
    /// The ELF extracted from it.
    pub vmlinux: PathBuf,
    pub busybox: PathBuf,
    /// `kernel_deb`, `busybox_deb`: the cached packages (their names carry the versions).
    pub kernel_deb: PathBuf,
    pub busybox_deb: PathBuf,
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn key(stdout: &str, k: &str) -> Option<PathBuf> {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
        .map(PathBuf::from)
}

/// Fetches (or finds cached) Debian's kernel and busybox with `scripts/fetch-linux.sh`. When
/// that fails: in CI (`CI=true`) a panic with the script's reason; elsewhere one `SKIPPED` line
/// and `None`.
pub fn linux_or_skip(test: &str) -> Option<LinuxFiles> {
    let run = ScriptRun::new("scripts/fetch-linux.sh");
    let stdout = &run.stdout;
    let files = (|| {
        Some(LinuxFiles {
            vmlinuz: key(stdout, "vmlinuz")?,
            vmlinux: key(stdout, "vmlinux")?,
            busybox: key(stdout, "busybox")?,
            kernel_deb: key(stdout, "kernel_deb")?,
            busybox_deb: key(stdout, "busybox_deb")?,
        })
    })();
    match files {
        Some(f) if run.status.success() && f.vmlinuz.is_file() && f.vmlinux.is_file() => Some(f),
        _ => {
            let why = run.stderr.lines().last().unwrap_or("no reason given");
            assert!(
                !ci(),
                "{test}: fetch-linux.sh failed in CI ({}): {why}\n{stdout}\n{}",
                run.status,
                run.stderr
            );
            eprintln!("SKIPPED {test}: Debian's kernel packages cannot be had here ({why})");
            None
        }
    }
}

/// Builds the initramfs with `scripts/build-initramfs.sh` (into `.cache/linux/`) and returns its
/// path. Panics with the build output when that fails: a broken initramfs fails the test.
pub fn initramfs() -> PathBuf {
    let run = ScriptRun::new("scripts/build-initramfs.sh");
    run.assert_success("build-initramfs.sh");
    let p = key(&run.stdout, "initramfs").unwrap_or_default();
    assert!(
        p.is_file(),
        "build-initramfs.sh printed no initramfs\n{}\n{}",
        run.stdout,
        run.stderr
    );
    p
}

/// The kernel command line of the Linux boots (the default of `scripts/xen-qemu-linux.sh`).
pub const CMDLINE: &str = "console=hvc0 earlyprintk=xen";

/// Boots `kernel` (bzImage or ELF) with `initrd` as dom0 of real Xen 4.17 in QEMU
/// (`scripts/xen-qemu-linux.sh`: `-cpu max,-smap`, dom0_mem=256M, 300 s timeout).
pub fn run_linux_on_xen(kernel: &Path, initrd: &Path) -> XenRun {
    run_linux_on_xen_with(kernel, initrd, CMDLINE)
}

/// [`run_linux_on_xen`] with the kernel command line `cmdline`.
pub fn run_linux_on_xen_with(kernel: &Path, initrd: &Path, cmdline: &str) -> XenRun {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/xen-qemu-linux.sh"))
        .arg(kernel)
        .arg(initrd)
        .env("LINUX_CMDLINE", cmdline);
    run_xen_command(cmd)
}

/// XFS's 2007 lazy-vunmap bug inside Linux: `xfsvmap=VARIANT` makes the initramfs's /init load
/// `linux/xfs-vmap/xfs_vmap.ko` with that variant instead of its usual checks. With
/// `panic_on_warn=1` the first failed pin (Linux 6.1 WARNs in `xen_mc_flush` and carries on with
/// an unpinned table, which on both hypervisors ends in a storm of failed multicalls) ends the
/// run with Linux's own report.
pub fn xfs_vmap_cmdline(variant: &str) -> String {
    format!("{CMDLINE} panic_on_warn=1 xfsvmap={variant}")
}

/// The `XENKVM-XFSVMAP variant=... result=...` line among `lines`, if /init got that far.
pub fn xfs_vmap_result(lines: &[String]) -> Option<&str> {
    lines
        .iter()
        .map(|l| l.trim_end())
        .find(|l| l.starts_with("XENKVM-XFSVMAP ") && l.contains(" result="))
}

/// A `key=value` field of the first line of `lines` that contains `marker`, as a number.
pub fn field_u64(lines: &[String], marker: &str, key: &str) -> Option<u64> {
    let line = lines.iter().find(|l| l.contains(marker))?;
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// The module's `vmap aliases LO-HI` line: where its stale mappings live.
pub fn xfs_vmap_alias_range(lines: &[String]) -> Option<(u64, u64)> {
    let line = lines.iter().find(|l| l.contains("XFSVMAP vmap aliases "))?;
    let range = line
        .split("XFSVMAP vmap aliases ")
        .nth(1)?
        .split(' ')
        .next()?;
    let (lo, hi) = range.split_once('-')?;
    Some((
        u64::from_str_radix(lo, 16).ok()?,
        u64::from_str_radix(hi, 16).ok()?,
    ))
}

/// Linux 6.1's report of a failed pin during fork: the WARN in `xen_mc_flush` (the multicall
/// with the pin came back with an error), with `xen_dup_mmap` on the stack, then the panic
/// `panic_on_warn` asks for. Returns what is missing, if anything.
pub fn linux_pin_failure_report(lines: &[String]) -> Result<(), String> {
    let expect = [
        "at arch/x86/xen/multicalls.c:",
        "xen_dup_mmap+",
        "Kernel panic - not syncing: kernel: panic_on_warn set",
    ];
    let missing: Vec<&str> = expect
        .iter()
        .copied()
        .filter(|e| !lines.iter().any(|l| l.contains(e)))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("Linux's report lacks {missing:?}"))
    }
}

/// The `XENKVM-INIT ... result=` lines among `lines` (console output).
pub fn result_lines(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l.trim_end())
        .filter(|l| l.starts_with("XENKVM-INIT ") && l.contains(" result="))
        .collect()
}
