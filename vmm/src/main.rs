//! `vmm`: boots Xen PV x86_64 kernels on KVM and serves Xen's PV MMU through the
//! page-type validator. See `vmm run --help`.

mod arch;
mod builder;
mod cli;
mod exit;
#[cfg(test)]
mod exit_tests;
mod frame_map;
mod fuzz;
mod guest_abi;
mod hypercall;
mod loader;
mod log_record;
mod logging;
mod memory;
mod provenance;
mod pv;
mod ratelimit;
mod replay;
mod run;
mod summary;
mod tlb;
mod vcpu;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                cli::ExitStatus::Usage.code()
            } else {
                0
            });
        }
    };
    match cli.command {
        cli::Command::Run(args) => ExitCode::from(run::run(&args)),
        cli::Command::Replay { log } => ExitCode::from(replay_command(&log)),
        cli::Command::Fuzz { calls, seed } => ExitCode::from(fuzz_command(calls, seed)),
    }
}

/// `vmm replay`: the findings on stdout, a final line, exit 0 (identical), 1 (a difference or
/// a damaged log) or 4 (not a readable vmm log: one line on stderr). A closed stdout or stderr
/// (`vmm replay LOG | head`) ends the output quietly, with the same status.
fn replay_command(log: &std::path::Path) -> u8 {
    use std::io::Write;
    let r = match replay::replay(log) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "vmm: replay: {e}");
            return cli::ExitStatus::Setup.code();
        }
    };
    let status = if r.clean() { 0 } else { 1 };
    let mut out = std::io::stdout().lock();
    let _ = print_replay(&mut out, &r).and_then(|()| out.flush());
    status
}

fn print_replay(out: &mut impl std::io::Write, r: &replay::ReplayReport) -> std::io::Result<()> {
    // The findings kept, then how many more there were.
    let list = |out: &mut dyn std::io::Write, f: &replay::Findings, prefix: &str, what: &str| {
        for m in &f.shown {
            writeln!(out, "{prefix}{m}")?;
        }
        let more = f.total - f.shown.len() as u64;
        if more > 0 {
            writeln!(out, "{prefix}... and {more} more {what}")?;
        }
        Ok::<(), std::io::Error>(())
    };
    list(out, &r.mismatches, "", "differences")?;
    list(out, &r.integrity, "log damaged: ", "problems")?;
    let guest = if r.guest_entries > 0 {
        format!(
            " ({} plain-frame entries written by the guest itself taken from the log)",
            r.guest_entries
        )
    } else {
        String::new()
    };
    let verdict = if r.mismatches.total == 0 {
        "every result and event identical".to_string()
    } else {
        format!("{} differ", r.mismatches.total)
    };
    let damage = if r.integrity.total > 0 {
        let n = r.integrity.total;
        format!(
            "; the log is damaged ({n} problem{})",
            if n == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    writeln!(
        out,
        "replayed {} operations from {} records: {verdict}{guest}{damage}",
        r.operations, r.records
    )
}

/// `vmm fuzz`: progress per 100,000 calls on stderr, the result on stdout; exit 1 on a failure.
fn fuzz_command(calls: u64, seed: u64) -> u8 {
    use logging::say;
    let mut next = 100_000;
    let r = fuzz::run(calls, seed, |r| {
        if r.calls >= next {
            next += 100_000;
            say!("fuzz: {} calls, {:.1} s", r.calls, r.elapsed.as_secs_f64());
        }
    });
    match r {
        Ok(r) => {
            say!(
                "fuzz: {} calls ({} exits, {} domains) from seed {seed} in {:.1} s: no failure; \
                 {} pins, {} refusals, {} -EFAULTs, {} continuations, {} log records replayed",
                r.calls,
                r.exits,
                r.epochs,
                r.elapsed.as_secs_f64(),
                r.pins,
                r.refusals,
                r.efaults,
                r.continuations,
                r.records_replayed
            );
            0
        }
        Err(e) => {
            say!("fuzz: FAILED: {e}");
            1
        }
    }
}
