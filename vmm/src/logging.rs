//! The VMM's two logs.
//!
//! * Human lines on stderr: refusals and violations in Xen's debug-log style followed by the
//!   provenance the validator found, rendered by [`crate::provenance`] (`mm.c:...:d0v0 ...`,
//!   `vmm: REFUSED ...`, `provenance: ...`), plus VMM notes.
//! * `--log FILE.jsonl`: one JSON object per line — the domain record (enough to rebuild the
//!   validator's starting point), one record per validator operation (as the validator reports
//!   it, with the hypercall that caused it and, before validations, the contents of the frames
//!   about to be validated), and every VMM-level refusal (bad domid, -EFAULT, -ENOSYS, ...).
//!
//! Lines are written through a `BufWriter` that is flushed at every exit path ([`EventLog::
//! finish`] and `Drop`), so a crash report never loses the lines before it.

use pagetable_validator::Event;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum LogError {
    #[error("cannot create log file {path}: {err}")]
    Create { path: String, err: std::io::Error },
}

pub struct EventLog {
    jsonl: Option<BufWriter<File>>,
    write_failed: Option<String>,
    /// Events with rc != 0 seen (refusals) and violation records (audit or enforce).
    pub refusals: u64,
    pub violations: u64,
}

impl EventLog {
    pub fn new(path: Option<&Path>) -> Result<Self, LogError> {
        let jsonl = match path {
            Some(p) => Some(BufWriter::new(File::create(p).map_err(|err| {
                LogError::Create {
                    path: p.display().to_string(),
                    err,
                }
            })?)),
            None => None,
        };
        Ok(EventLog {
            jsonl,
            write_failed: None,
            refusals: 0,
            violations: 0,
        })
    }

    /// Whether a machine log is being written (callers skip building costly records otherwise).
    pub fn machine(&self) -> bool {
        self.jsonl.is_some()
    }

    /// Writes one JSON object as one line.
    pub fn record(&mut self, v: &Value) {
        if let Some(w) = self.jsonl.as_mut() {
            let r = serde_json::to_writer(&mut *w, v)
                .map_err(std::io::Error::from)
                .and_then(|_| w.write_all(b"\n"));
            if let Err(e) = r {
                if self.write_failed.is_none() {
                    eprintln!("vmm: writing the JSON log failed: {e}");
                    self.write_failed = Some(e.to_string());
                }
            }
        }
    }

    /// Logs the validator's events for one hypercall operation: JSON (tagged with the hypercall
    /// and the guest RIP) and, for refusals and violations, Xen-style lines on stderr.
    pub fn validator_events(&mut self, events: Vec<Event>, hypercall: &str, rip: u64) {
        for ev in events {
            if ev.rc != 0 {
                self.refusals += 1;
            }
            self.violations += ev.violations.len() as u64;
            if ev.rc != 0 || !ev.violations.is_empty() {
                eprintln!("{}", crate::provenance::render(&ev));
            } else {
                log::debug!("{ev}");
            }
            if self.jsonl.is_some() {
                let mut v = serde_json::to_value(&ev).unwrap_or_else(
                    |e| json!({ "event": "unserializable", "error": e.to_string() }),
                );
                if let Value::Object(m) = &mut v {
                    m.insert("hypercall".into(), json!(hypercall));
                    m.insert("rip".into(), json!(rip));
                    if !ev.violations.is_empty() {
                        // The human provenance lines (vmalloc offset, pkmap/fixmap slot,
                        // direct-map pfn), so tools need not re-derive them.
                        m.insert(
                            "provenance".into(),
                            json!(crate::provenance::json_lines(&ev)),
                        );
                    }
                }
                self.record(&v);
            }
        }
    }

    /// A refusal decided by the VMM itself (not the validator): stderr + JSON.
    /// `print` = false keeps stderr quiet for repeats (the JSON log still gets every one).
    pub fn vmm_refusal(&mut self, hypercall: &str, rc: i64, why: &str, rip: u64, print: bool) {
        self.refusals += 1;
        if print {
            eprintln!("vmm: {hypercall}: {why} -> {rc}");
        }
        self.record(&json!({ "event": "vmm_refusal", "hypercall": hypercall, "rc": rc, "why": why, "rip": rip }));
    }

    pub fn flush(&mut self) {
        if let Some(w) = self.jsonl.as_mut() {
            if let Err(e) = w.flush() {
                if self.write_failed.is_none() {
                    eprintln!("vmm: flushing the JSON log failed: {e}");
                    self.write_failed = Some(e.to_string());
                }
            }
        }
    }

    /// Flushes and reports whether every line made it to the file.
    pub fn finish(&mut self) -> Result<(), String> {
        self.flush();
        match &self.write_failed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        self.flush();
    }
}
