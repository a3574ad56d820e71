//! What the figures were measured on.

use std::process::Command;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    pub cpu_model: String,
    pub cores: usize,
    pub kernel: String,
    /// /dev/kvm can be opened read-write.
    pub kvm: bool,
    pub qemu_version: Option<String>,
    /// The Xen package real Xen comes from (scripts/xen-qemu.sh's cache), if fetched.
    pub xen_package: Option<String>,
    /// UTC, when the report was written.
    pub date: String,
    /// /proc/loadavg's 1, 5 and 15 minute averages then: other work on the machine (the
    /// figures' spreads show its effect).
    pub load_average: Vec<f64>,
}

fn first_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout);
    out.status
        .success()
        .then(|| s.lines().next().unwrap_or("").trim().to_string())
}

/// When `path` was last written, as [`utc_now`] writes dates.
pub fn file_date(path: &std::path::Path) -> Option<String> {
    let p = path.to_str()?;
    first_line("date", &["-u", "-r", p, "+%Y-%m-%dT%H:%M:%SZ"])
}

/// Now, as `2026-12-02T03:04:05Z`.
pub fn utc_now() -> String {
    first_line("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]).unwrap_or_else(|| "unknown".into())
}

pub fn describe(xen_cache: &std::path::Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu_model,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
        kvm: std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok(),
        qemu_version: first_line("qemu-system-x86_64", &["--version"]),
        xen_package: std::fs::read_to_string(xen_cache.join("VERSION"))
            .ok()
            .map(|s| s.trim().to_string()),
        date: utc_now(),
        load_average: load_average(),
    }
}

/// /proc/loadavg's three averages (empty when unreadable).
pub fn load_average() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|w| w.parse().ok())
        .collect()
}
