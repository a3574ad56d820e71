//! `vmm replay FILE.jsonl`: re-runs a `--log` offline through a fresh validator over plain
//! in-memory frames and checks that every operation gives the same event (result, Xen's lines,
//! provenance). It proves the log holds enough to reproduce the run, and lets a verdict be
//! debugged without KVM.
//!
//! The log is hostile input too. Replay
//! * streams it line by line (no line longer than [`MAX_LINE`]; a 10 GB file costs no more
//!   memory than a small one);
//! * checks every size against the largest domain `vmm run` builds before allocating
//!   ([`MAX_FRAMES`]), and only allocates the frame table once the m2p records that must
//!   follow the domain record are all there (so memory grows with the log's contents);
//! * checks the record numbers (`rec`): a deleted, repeated or moved line is reported as such,
//!   and so is a log without its final `end` record (a run that was killed) or with a cut-off
//!   last line;
//! * applies every guest-visible write the VMM logged (`frames`, `page_write`, `guest_write`)
//!   and reports a VMM write into a validated table (the VMM never makes one);
//! * answers anything else — an empty file, random bytes, a record with an edited value of
//!   the wrong type or range — with one error line (exit 4), never a panic.
//!
//! Exact for the enforce policy, with one input the log cannot hold: the guest's own stores.
//! A plain (non-pagetable) frame is the guest's to write, so when an `mmu_update` writes one,
//! replay takes the entry's previous value from the record and counts it
//! ([`ReplayReport::guest_entries`]); everything the VMM wrote is replayed. Under audit a guest
//! may also write directly through a tolerated stray RW mapping into a validated table; such
//! writes are not in the log.
//!
//! The parts: [`reader`] takes the log apart (bounded lines, the checked domain record, record
//! fields, the record numbers); [`apply`] re-runs its records on the fresh validator and
//! compares the events.

mod apply;
mod reader;
#[cfg(test)]
mod tests;

use crate::logging::MAX_LINE;
use apply::{Phase, Replayer};
use reader::{read_line, Line};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use thiserror::Error;

/// The largest domain `vmm run` builds (`--mem` at most 65536 MiB), in frames.
pub const MAX_FRAMES: u64 = 65536 * 256;
/// Findings of one kind kept for printing (the rest are counted).
const SHOWN: usize = 20;

/// A list that keeps its first [`SHOWN`] entries and counts all.
#[derive(Debug, Default)]
pub struct Findings {
    pub shown: Vec<String>,
    pub total: u64,
}

impl Findings {
    fn push(&mut self, s: String) {
        self.total += 1;
        if self.shown.len() < SHOWN {
            self.shown.push(s);
        }
    }
}

#[derive(Debug, Default)]
pub struct ReplayReport {
    /// Validator operations replayed.
    pub operations: u64,
    /// Records read.
    pub records: u64,
    /// Operations whose replayed event differs from the logged one.
    pub mismatches: Findings,
    /// The log itself is damaged: missing, repeated or moved records, no end record, ...
    pub integrity: Findings,
    /// Plain-frame entries the guest wrote itself, taken from the logged `old` values.
    pub guest_entries: u64,
}

impl ReplayReport {
    pub fn clean(&self) -> bool {
        self.mismatches.total == 0 && self.integrity.total == 0
    }
}

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("cannot open {path}: {err}")]
    Open { path: String, err: std::io::Error },
    #[error("cannot read {path} (line {line}): {err}")]
    Read {
        path: String,
        line: u64,
        err: std::io::Error,
    },
    #[error("{path} is empty: not a vmm log")]
    Empty { path: String },
    #[error("{path} line {line} is longer than {max} bytes: not a vmm log")]
    LineTooLong { path: String, line: u64, max: usize },
    #[error("{path} line {line} is not JSON ({err}): not a vmm log")]
    NotJson {
        path: String,
        line: u64,
        err: String,
    },
    #[error("{path} line {line}: {msg}")]
    Record {
        path: String,
        line: u64,
        msg: String,
    },
    #[error("{path}: the log ends before its m2p is complete ({have} of {want} entries)")]
    NoOperations { path: String, have: u64, want: u64 },
}

/// Replays the log at `path`.
pub fn replay(path: &Path) -> Result<ReplayReport, ReplayError> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|err| ReplayError::Open {
        path: shown.clone(),
        err,
    })?;
    replay_from(file, &shown)
}

/// Replays a log read from `input` (`name` for messages).
pub fn replay_from(input: impl Read, name: &str) -> Result<ReplayReport, ReplayError> {
    let mut reader = std::io::BufReader::with_capacity(1 << 16, input);
    let mut st = Replayer::default();
    let mut buf = Vec::new();
    let mut lineno = 0u64;
    loop {
        lineno += 1;
        let got = read_line(&mut reader, &mut buf).map_err(|err| ReplayError::Read {
            path: name.into(),
            line: lineno,
            err,
        })?;
        let complete = match got {
            Line::Eof => break,
            Line::TooLong => {
                return Err(ReplayError::LineTooLong {
                    path: name.into(),
                    line: lineno,
                    max: MAX_LINE,
                })
            }
            Line::Complete => true,
            Line::Unterminated => false,
        };
        let rec: Value = match serde_json::from_slice(&buf) {
            Ok(v) => v,
            Err(_) if !complete && lineno > 1 => {
                st.report.integrity.push(format!(
                    "line {lineno} (the last) is cut off: the run was killed while writing it"
                ));
                break;
            }
            Err(e) => {
                return Err(ReplayError::NotJson {
                    path: name.into(),
                    line: lineno,
                    err: e.to_string(),
                })
            }
        };
        st.apply(rec, lineno).map_err(|msg| ReplayError::Record {
            path: name.into(),
            line: lineno,
            msg,
        })?;
    }
    if lineno == 1 {
        return Err(ReplayError::Empty { path: name.into() });
    }
    match &st.phase {
        Phase::Start => unreachable!("line 1 was read and is the domain record"),
        Phase::M2p { m2p, dom } => {
            return Err(ReplayError::NoOperations {
                path: name.into(),
                have: m2p.len() as u64,
                want: dom.nr,
            })
        }
        Phase::Ops { .. } => {}
    }
    if !st.ended {
        st.report.integrity.push(format!(
            "no end record: the run did not finish (killed?); the log stops after record {}",
            st.next_rec.saturating_sub(1)
        ));
    }
    Ok(st.report)
}
