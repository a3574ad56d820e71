//! `bench-report`: the benchmark report of issue 12, driven by `scripts/bench.sh`.
//!
//! * `bench-report guest`: boots every `matrix` row of guest/scenarios.manifest on our VMM and
//!   on real Xen 4.17 in QEMU, writes `<bench dir>/guest.json`.
//! * `bench-report render`: reads `<bench dir>/{validator,vmm_exits,guest}.json` (each may be
//!   absent: the report says so) and writes `bench/results.json`, `bench/REPORT.md` and the
//!   SVG charts.
//!
//! `<bench dir>` is `${CARGO_TARGET_DIR:-target}/bench`, where the perf benchmarks write.
#![forbid(unsafe_code)]

mod charts;
mod goals;
mod guest;
mod inputs;
mod machine;
mod report;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("cannot run {0}: {1}")]
    Spawn(String, std::io::Error),
    #[error("cannot write {0}: {1}")]
    Write(String, std::io::Error),
    #[error("chart {0}: {1}")]
    Chart(String, String),
    #[error("JSON: {0}")]
    Json(serde_json::Error),
    #[error("--reps must be at least 1")]
    NoReps,
}

#[derive(Parser)]
#[command(
    name = "bench-report",
    about = "Issue 12's benchmark report (run by scripts/bench.sh)"
)]
struct Cli {
    /// Where the benchmarks' JSON files are (default: ${CARGO_TARGET_DIR:-target}/bench).
    #[arg(long, global = true)]
    bench_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the guest workloads on the VMM and on real Xen in QEMU; write guest.json.
    Guest {
        /// Repetitions of each scenario on each hypervisor.
        #[arg(long, default_value_t = 3)]
        reps: usize,
        /// The vmm binary (default: ${CARGO_TARGET_DIR:-target}/release/vmm).
        #[arg(long)]
        vmm: Option<PathBuf>,
        /// Only the scenarios whose command line contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Run xfs-btree-walk with N blocks instead of the manifest's 1700.
        #[arg(long, value_name = "N")]
        blocks: Option<u64>,
    },
    /// Write results.json, REPORT.md and the charts into OUT.
    Render {
        #[arg(long, default_value = "bench")]
        out: PathBuf,
    },
}

fn target_dir() -> PathBuf {
    let root = xenkvm_tests::guest::repo_root();
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let bench = cli.bench_dir.unwrap_or_else(|| target_dir().join("bench"));
    let r = match cli.command {
        Cmd::Guest {
            reps,
            vmm,
            filter,
            blocks,
        } => (|| {
            if reps == 0 {
                return Err(Error::NoReps);
            }
            let opts = guest::GuestOpts {
                reps,
                vmm: vmm.unwrap_or_else(|| target_dir().join("release/vmm")),
                filter,
                blocks,
            };
            let elf = xenkvm_tests::guest::guest_elf();
            let g = guest::run(&opts, &elf, machine::utc_now())?;
            std::fs::create_dir_all(&bench)
                .map_err(|e| Error::Write(bench.display().to_string(), e))?;
            let p = bench.join("guest.json");
            let text = serde_json::to_string_pretty(&g).map_err(Error::Json)?;
            std::fs::write(&p, text + "\n")
                .map_err(|e| Error::Write(p.display().to_string(), e))?;
            println!("wrote {}", p.display());
            Ok(())
        })(),
        Cmd::Render { out } => {
            let root = xenkvm_tests::guest::repo_root();
            let inp = report::Inputs {
                machine: machine::describe(&root.join(".cache/xen")),
                validator: inputs::load(&bench.join("validator.json")),
                exits: inputs::load(&bench.join("vmm_exits.json")),
                exits_script: root.join("scripts/bench-exits.sh").is_file(),
                guest: inputs::load(&bench.join("guest.json")),
            };
            report::write(&out, &inp).map(|()| {
                println!(
                    "wrote {}/REPORT.md, results.json and the charts",
                    out.display()
                )
            })
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-report: {e}");
            ExitCode::FAILURE
        }
    }
}
