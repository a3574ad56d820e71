//! `vmm`: boots Xen PV x86_64 kernels on KVM and serves Xen's PV MMU through the
//! page-type validator. See `vmm run --help`.

mod arch;
mod builder;
mod cli;
mod exit;
mod hypercall;
mod loader;
mod logging;
mod memory;
mod provenance;
mod pv;
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
            return ExitCode::from(if e.use_stderr() { cli::exit::USAGE } else { 0 });
        }
    };
    match cli.command {
        cli::Command::Run(args) => ExitCode::from(run::run(&args)),
        cli::Command::Replay { log } => match replay::replay(&log) {
            Ok(r) if r.mismatches.is_empty() => {
                println!(
                    "replayed {} operations: every result and event identical",
                    r.operations
                );
                ExitCode::SUCCESS
            }
            Ok(r) => {
                for m in r.mismatches.iter().take(20) {
                    println!("{m}");
                }
                println!(
                    "replayed {} operations: {} differ",
                    r.operations,
                    r.mismatches.len()
                );
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("vmm: replay: {e}");
                ExitCode::from(cli::exit::SETUP)
            }
        },
    }
}
