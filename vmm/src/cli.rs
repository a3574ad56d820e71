//! Command line (clap derive) and exit statuses.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Exit statuses of `vmm run` (each also in `--help`, checked by a test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// The guest powered off (SCHEDOP_shutdown, SHUTDOWN_poweroff).
    Poweroff = 0,
    /// The guest crashed (SHUTDOWN_crash or SHUTDOWN_watchdog), or the VMM crashed the domain
    /// as Xen would.
    Crash = 1,
    /// Bad command line (clap's usage errors).
    Usage = 2,
    /// The VMM stopped the guest: an exit no PV guest can cause, or a vCPU nothing can wake.
    Stopped = 3,
    /// VMM/setup error: no /dev/kvm, unreadable or non-Xen kernel, too little memory, log file.
    Setup = 4,
    /// The guest asked for reboot or suspend, which this VMM does not do.
    OtherShutdown = 5,
    /// The run was ended from outside: `--timeout` elapsed, or SIGINT/SIGTERM.
    Interrupted = 6,
}

impl ExitStatus {
    pub const ALL: [ExitStatus; 7] = [
        ExitStatus::Poweroff,
        ExitStatus::Crash,
        ExitStatus::Usage,
        ExitStatus::Stopped,
        ExitStatus::Setup,
        ExitStatus::OtherShutdown,
        ExitStatus::Interrupted,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(s: ExitStatus) -> Self {
        std::process::ExitCode::from(s.code())
    }
}

const AFTER_HELP: &str = "\
Exit status of `vmm run`:
  0  the guest powered off (sched_op SHUTDOWN_poweroff)
  1  the guest crashed: SHUTDOWN_crash / SHUTDOWN_watchdog, or the VMM crashed the domain
     as Xen would (an exception with no handler, a kernel stack it cannot write)
  2  bad command line
  3  the VMM stopped the guest: an exit no PV guest can cause (a fault in the VMM's ring-0
     stubs, a KVM internal error or entry failure), or a vCPU blocked with nothing to wake it
     (a report with RIP, CR2, CR3, the last hypercall and the nearest guest symbol is printed)
  4  setup error: /dev/kvm missing, kernel unreadable or not a Xen PV x86_64 ELF (or a
     bzImage holding one), initrd unreadable, too little memory, log file or --frame-map
     file not writable
  5  the guest asked for reboot or suspend (not supported)
  6  ended from outside: --timeout elapsed, or SIGINT/SIGTERM (summary and log complete)

Output: the guest console on stdout; refusals and violations on stderr in Xen's debug-log
style with provenance (rate-limited like Xen's printk: 10 messages, then one per 5 s; --log
gets every one), then a summary. RUST_LOG=debug also prints every MMU operation.";

#[derive(Parser, Debug)]
#[command(
    name = "vmm",
    version,
    about = "Run Xen PV x86_64 kernels on KVM with Xen's PV MMU rules enforced by a page-type validator",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Boot a Xen PV kernel (default: the embedded project guest) as dom0 under KVM.
    #[command(after_help = AFTER_HELP)]
    Run(RunArgs),
    /// Re-run a `--log` file offline through the validator and check every operation gives the
    /// same result and events (exit 0: identical; 1: a difference, or a damaged log: a missing,
    /// repeated or moved record, no end record (a killed run); 4: not a readable vmm log).
    Replay {
        /// A JSON Lines log written by `vmm run --log`.
        log: PathBuf,
    },
    /// Fuzz the hypercall server and the validator below the guest (no KVM): random and
    /// structured hypercalls on a fake domain, invariants checked after every call.
    #[command(hide = true)]
    Fuzz {
        /// Fuzzer steps (hypercalls and guest stores).
        #[arg(long, default_value_t = 100_000)]
        calls: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Parser, Debug, Clone)]
pub struct RunArgs {
    /// Xen PV x86_64 kernel: an ELF, or a bzImage holding one (Debian's vmlinuz); without it,
    /// the embedded project guest boots.
    pub kernel: Option<PathBuf>,
    /// Initial ramdisk, passed as Xen 4.17's dom0 builder passes the first module: for a kernel
    /// with XEN_ELFNOTE_MOD_START_PFN (Linux) outside the initial mapping, start_info.mod_start
    /// = its first pfn with SIF_MOD_START_PFN; otherwise mapped right after the kernel,
    /// mod_start = its virtual address. mod_len = its length.
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// Guest memory in MiB (dom0_mem).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub mem: u64,
    /// Guest command line (start_info.cmd_line, at most 1023 bytes). Default for the
    /// embedded guest: "scenario=demo" (the XFS lazy-vmap bug caught, then its fix); for a
    /// KERNEL: empty.
    #[arg(long)]
    pub cmdline: Option<String>,
    /// enforce: refuse like Xen; audit: log each stray writable mapping with its provenance,
    /// then allow, so one run finds every offender.
    #[arg(long, value_enum, default_value_t = PolicyArg::Enforce)]
    pub policy: PolicyArg,
    /// Write a JSON Lines log (one object per MMU operation, refusal and violation, with enough
    /// detail to replay the run through the validator).
    #[arg(long, value_name = "FILE.jsonl")]
    pub log: Option<PathBuf>,
    /// Pseudo-physical to machine map: identity, or a random permutation (catches guests that
    /// confuse pfn and mfn).
    #[arg(long, value_enum, default_value_t = P2mArg::Identity)]
    pub p2m: P2mArg,
    /// Seed for `--p2m shuffle` (default: from the clock; the seed is printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop a guest that has not shut down after SECONDS of wall time (exit status 6, with the
    /// summary and a complete log). SIGINT and SIGTERM end the run the same way.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Draw every guest frame by its type into FILE.svg: one file, two panels, the frame table
    /// at the first refusal (the refused frame and the L1 slots that still map it RW marked
    /// with their provenance) and at exit. A path that cannot be written is a setup error.
    #[arg(long, value_name = "FILE.svg")]
    pub frame_map: Option<PathBuf>,
    /// Do not print the summary and boot banner.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyArg {
    Enforce,
    Audit,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum P2mArg {
    Identity,
    Shuffle,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_documents_every_exit_status() {
        for s in ExitStatus::ALL {
            let line = format!("\n  {}  ", s.code());
            assert!(AFTER_HELP.contains(&line), "--help does not document {s:?}");
        }
    }
}
