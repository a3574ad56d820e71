//! `mkinitramfs`: writes the project's initramfs (cpio newc + gzip). See `--help` and
//! `scripts/build-initramfs.sh`, which gathers the inputs.
#![forbid(unsafe_code)]

use clap::Parser;
use initramfs::{project, InitramfsError, ProjectInputs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use thiserror::Error;

/// Build the initramfs Debian's Linux boots to: a static busybox with the applet links /init
/// needs, /init, /dev/console and /dev/null, and extra static programs in /bin.
#[derive(Parser, Debug)]
#[command(name = "mkinitramfs", version)]
struct Args {
    /// Static busybox (Debian busybox-static's /bin/busybox; scripts/fetch-linux.sh fetches it).
    #[arg(long)]
    busybox: PathBuf,
    /// The /init script (linux/init.sh).
    #[arg(long)]
    init: PathBuf,
    /// A static program to put in /bin under its file name (repeatable), e.g. mmap-churn.
    #[arg(long = "program", value_name = "PATH")]
    programs: Vec<PathBuf>,
    /// A kernel module to put in /lib/modules under its file name (repeatable), e.g. xfs_vmap.ko.
    #[arg(long = "module", value_name = "PATH")]
    modules: Vec<PathBuf>,
    /// Write the gzip-compressed archive here.
    #[arg(short, long)]
    output: PathBuf,
    /// Write the uncompressed cpio archive instead.
    #[arg(long)]
    no_gzip: bool,
}

#[derive(Debug, Error)]
enum Error {
    #[error("cannot read {path}: {err}")]
    Read { path: String, err: std::io::Error },
    #[error("cannot write {path}: {err}")]
    Write { path: String, err: std::io::Error },
    #[error("{0}: no file name")]
    NoName(String),
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
}

fn read(p: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(p).map_err(|err| Error::Read {
        path: p.display().to_string(),
        err,
    })
}

/// Each file's (file name, contents).
fn named_files(paths: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>, Error> {
    paths
        .iter()
        .map(|p| {
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| Error::NoName(p.display().to_string()))?;
            Ok((name.to_string(), read(p)?))
        })
        .collect()
}

fn run(a: &Args) -> Result<usize, Error> {
    let busybox = read(&a.busybox)?;
    let init = read(&a.init)?;
    let programs = named_files(&a.programs)?;
    let modules = named_files(&a.modules)?;
    let fs = project(&ProjectInputs {
        busybox: &busybox,
        init: &init,
        programs: &programs,
        modules: &modules,
    })?;
    let bytes = if a.no_gzip {
        fs.write_cpio(Vec::new())?
    } else {
        fs.to_gzip()?
    };
    // Write next to the target and rename, so a reader never sees half an archive.
    let tmp = a.output.with_extension("partial");
    let werr = |err| Error::Write {
        path: a.output.display().to_string(),
        err,
    };
    std::fs::write(&tmp, &bytes).map_err(werr)?;
    std::fs::rename(&tmp, &a.output).map_err(werr)?;
    Ok(bytes.len())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(n) => {
            eprintln!("mkinitramfs: wrote {} ({n} bytes)", args.output.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mkinitramfs: {e}");
            ExitCode::FAILURE
        }
    }
}
