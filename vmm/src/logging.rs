//! The VMM's two logs.
//!
//! * Human lines on stderr: refusals and violations in Xen's debug-log style followed by the
//!   provenance the validator found, rendered by [`crate::provenance`] (`mm.c:...:d0v0 ...`,
//!   `vmm: REFUSED ...`, `provenance: ...`), plus VMM notes. Everything a guest can trigger is a
//!   *message* and goes through Xen's printk rate limit ([`RateLimiter`]: 10 messages, then one
//!   per 5 s, with a `vmm: N messages suppressed` line when one gets through again and at exit);
//!   a message has at most [`MAX_MESSAGE_LINES`] lines. Every event is still counted (summary)
//!   and written to the JSON log. Write errors (a closed stderr) are ignored: the guest's run
//!   does not depend on anyone reading.
//! * `--log FILE.jsonl`: one JSON object per line, format [`LOG_FORMAT`]:
//!   - every record starts with `"rec": n`, its 0-based line number, so `vmm replay` finds a
//!     deleted, repeated or moved line;
//!   - record 0 is the domain record (`nr_frames`, policy, rules, regions, the builder's L4),
//!     followed by `m2p` records (the mfn -> pfn table, at most [`M2P_PER_RECORD`] entries each,
//!     in order);
//!   - `frames` records (at most [`FRAMES_PER_RECORD`] frames each): contents of frames about
//!     to be validated;
//!   - one record per validator operation (as the validator reports it, with the hypercall and
//!     RIP; long lists are cut at fixed sizes with `more_*` counts, see [`OpRecord::new`]);
//!   - every guest-visible write the VMM itself makes: `page_write` (MMUEXT_CLEAR_PAGE /
//!     COPY_PAGE, with the page's resulting contents) and `guest_write` (hypercall results,
//!     `done` counts, xen_version buffers, multicall entries: guest-physical address + bytes);
//!   - every VMM-level refusal (bad domid, -EFAULT, -ENOSYS, ...) and flush request;
//!   - a final `end` record (outcome, exit status, number of records). A log without it is
//!     from a run that was killed.
//!
//!   No line is longer than [`MAX_LINE`] bytes. The records are one type, [`LogRecord`], which
//!   `vmm replay` reads back.
//!
//! Lines are written through a `BufWriter` that is flushed at every exit ([`EventLog::flush`]
//! is called by the vCPU loop per exit, [`EventLog::finish`] and `Drop` at the end).

use crate::log_record::{DomainRecord, LogRecord, OpRecord, VmmRecord};
use crate::ratelimit::{RateLimiter, Verdict};
use pagetable_validator::Event;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;
use thiserror::Error;

/// Version of the JSON log format (the domain record's `log_format`).
pub const LOG_FORMAT: u64 = 2;
/// At most this many frames per `frames` record (a frame is at most ~14 KiB of JSON).
pub const FRAMES_PER_RECORD: usize = 64;
/// At most this many m2p entries per `m2p` record.
pub const M2P_PER_RECORD: usize = 8192;
/// No log line is longer (and `vmm replay` refuses longer ones).
pub const MAX_LINE: usize = 4 << 20;
/// Lines of one message on stderr (the rest: one "N more lines" line).
pub const MAX_MESSAGE_LINES: usize = 40;

/// `eprintln!` that ignores a closed stderr instead of panicking.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
pub(crate) use say;

#[derive(Debug, Error)]
pub enum LogError {
    #[error("cannot create log file {path}: {err}")]
    Create { path: String, err: std::io::Error },
}

/// Milliseconds on a monotonic clock (replaceable in tests).
type Clock = Box<dyn Fn() -> u64>;

pub struct EventLog {
    jsonl: Option<BufWriter<Box<dyn Write>>>,
    /// Where the JSON log goes, for error messages.
    jsonl_name: String,
    write_failed: Option<String>,
    /// The human log (stderr).
    human: Box<dyn Write>,
    limiter: RateLimiter,
    clock: Clock,
    /// Number of the next JSON record.
    rec: u64,
    ended: bool,
    /// Events with rc != 0 seen (refusals) and violation records (audit or enforce).
    pub refusals: u64,
    pub violations: u64,
}

impl EventLog {
    /// The JSON log goes to `path` (if any), human lines to stderr.
    pub fn new(path: Option<&Path>) -> Result<Self, LogError> {
        let jsonl: Option<Box<dyn Write>> = match path {
            Some(p) => Some(Box::new(File::create(p).map_err(|err| {
                LogError::Create {
                    path: p.display().to_string(),
                    err,
                }
            })?)),
            None => None,
        };
        let name = path.map(|p| p.display().to_string()).unwrap_or_default();
        Ok(Self::with_sinks(jsonl, name, Box::new(std::io::stderr())))
    }

    /// Explicit sinks (tests and the fuzzer): the JSON log (if any) and the human log.
    pub fn with_sinks(jsonl: Option<Box<dyn Write>>, name: String, human: Box<dyn Write>) -> Self {
        let start = Instant::now();
        EventLog {
            jsonl: jsonl.map(BufWriter::new),
            jsonl_name: name,
            write_failed: None,
            human,
            limiter: RateLimiter::default(),
            clock: Box::new(move || start.elapsed().as_millis() as u64),
            rec: 0,
            ended: false,
            refusals: 0,
            violations: 0,
        }
    }

    /// Replaces the rate limiter's clock (milliseconds).
    #[cfg(test)]
    pub fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// Whether a machine log is being written (callers skip building costly records otherwise).
    pub fn machine(&self) -> bool {
        self.jsonl.is_some()
    }

    /// (printed, suppressed) guest-triggered messages so far.
    pub fn message_counts(&self) -> (u64, u64) {
        (self.limiter.printed, self.limiter.suppressed)
    }

    /// A guest-triggered message (one or more lines) for stderr, rate-limited like Xen's
    /// printk and cut at [`MAX_MESSAGE_LINES`] lines.
    pub fn message(&mut self, text: &str) {
        match self.limiter.check((self.clock)()) {
            Verdict::Suppress => {}
            Verdict::Print { suppressed } => {
                if suppressed > 0 {
                    self.note(&suppressed_line(suppressed));
                }
                let mut out = String::new();
                let mut lines = text.lines();
                for l in lines.by_ref().take(MAX_MESSAGE_LINES) {
                    out.push_str(l);
                    out.push('\n');
                }
                let more = lines.count();
                if more > 0 {
                    let where_ = if self.machine() {
                        "all in the JSON log"
                    } else {
                        "not shown"
                    };
                    out.push_str(&format!("vmm: ... {more} more lines ({where_})\n"));
                }
                let _ = self.human.write_all(out.as_bytes());
            }
        }
    }

    /// A line of the VMM's own (not triggered by the guest): never rate-limited.
    pub fn note(&mut self, line: &str) {
        let _ = writeln!(self.human, "{line}");
    }

    /// Writes one record as one line, numbered (`"rec"` first).
    pub fn record(&mut self, r: impl Into<LogRecord>) {
        if self.jsonl.is_none() {
            return;
        }
        // Through a `Value`: its keys are sorted, so the line does not depend on field order.
        let v = serde_json::to_value(r.into())
            .unwrap_or_else(|e| json!({ "event": "unserializable", "error": e.to_string() }));
        self.record_value(&v);
    }

    fn record_value(&mut self, v: &Value) {
        let Some(w) = self.jsonl.as_mut() else {
            return;
        };
        let rec = self.rec;
        self.rec += 1;
        let r = write_record(w, rec, v);
        if let Err(e) = r {
            if self.write_failed.is_none() {
                let line = format!("vmm: writing the JSON log {} failed: {e}", self.jsonl_name);
                self.note(&line);
                self.write_failed = Some(e.to_string());
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
                self.message(&crate::provenance::render(&ev));
            } else {
                log::debug!("{ev}");
            }
            if self.jsonl.is_some() {
                let r = OpRecord::new(ev, hypercall, rip, crate::provenance::json_lines);
                self.record(LogRecord::Op(Box::new(r)));
            }
        }
    }

    /// A refusal decided by the VMM itself (not the validator): stderr + JSON.
    /// `print` = false keeps stderr quiet for repeats (the JSON log still gets every one).
    pub fn vmm_refusal(&mut self, hypercall: &str, rc: i64, why: &str, rip: u64, print: bool) {
        self.refusals += 1;
        if print {
            self.message(&format!("vmm: {hypercall}: {why} -> {rc}"));
        }
        self.record(VmmRecord::VmmRefusal {
            hypercall: hypercall.to_string(),
            rc,
            why: why.to_string(),
            rip,
        });
    }

    /// The domain record (with `log_format` set), then the m2p in `m2p` records of at most
    /// [`M2P_PER_RECORD`] entries. The command line is cut to what the guest got.
    pub fn domain(&mut self, mut d: DomainRecord, m2p: &[u64]) {
        d.log_format = Some(LOG_FORMAT);
        let c = &mut d.cmdline;
        let mut n = c.len().min(pagetable_validator::abi::MAX_GUEST_CMDLINE - 1);
        while !c.is_char_boundary(n) {
            n -= 1;
        }
        c.truncate(n);
        self.record(VmmRecord::Domain(d));
        for (i, chunk) in m2p.chunks(M2P_PER_RECORD).enumerate() {
            self.record(VmmRecord::M2p {
                start: (i * M2P_PER_RECORD) as u64,
                m2p: chunk.to_vec(),
            });
        }
    }

    /// The final record: how the run ended. Written once; a log without it is from a run that
    /// did not end (killed).
    pub fn end(&mut self, outcome: &str, exit_status: Option<u8>, wall_s: f64) {
        if self.ended {
            return;
        }
        self.ended = true;
        let records = self.rec + 1;
        self.record(VmmRecord::End {
            outcome: outcome.to_string(),
            exit_status,
            wall_s,
            records,
        });
    }

    pub fn flush(&mut self) {
        let _ = self.human.flush();
        if let Some(w) = self.jsonl.as_mut() {
            if let Err(e) = w.flush() {
                if self.write_failed.is_none() {
                    let line =
                        format!("vmm: flushing the JSON log {} failed: {e}", self.jsonl_name);
                    self.note(&line);
                    self.write_failed = Some(e.to_string());
                }
            }
        }
    }

    /// Says how many messages were suppressed since the last one printed, flushes, and reports
    /// whether every JSON line made it to the file.
    pub fn finish(&mut self) -> Result<(), String> {
        let missed = self.limiter.take_missed();
        if missed > 0 {
            self.note(&suppressed_line(missed));
        }
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

fn suppressed_line(n: u64) -> String {
    format!("vmm: {n} messages suppressed (rate limit as Xen's printk: 10, then 1 per 5 s; every event is counted in the summary and written to --log)")
}

/// `{"rec":N,` + the object's members, one line. A non-object is wrapped as `"value"`.
fn write_record(w: &mut impl Write, rec: u64, v: &Value) -> std::io::Result<()> {
    let mut body = serde_json::to_vec(v).map_err(std::io::Error::from)?;
    if body.len() + 32 > MAX_LINE {
        // Cannot happen with the bounds above; stays a valid, numbered record if it does.
        let of = v.get("event").and_then(Value::as_str).unwrap_or("?").into();
        let r = VmmRecord::Oversized {
            of,
            bytes: body.len(),
        };
        let v = serde_json::to_value(r).map_err(std::io::Error::from)?;
        body = serde_json::to_vec(&v).map_err(std::io::Error::from)?;
    }
    match body.strip_prefix(b"{") {
        Some(b"}") => write!(w, "{{\"rec\":{rec}}}")?,
        Some(rest) => {
            write!(w, "{{\"rec\":{rec},")?;
            w.write_all(rest)?;
        }
        None => {
            write!(w, "{{\"rec\":{rec},\"value\":")?;
            w.write_all(&body)?;
            w.write_all(b"}")?;
        }
    }
    w.write_all(b"\n")
}

/// A log sink in memory whose bytes its owner reads back (the fuzzer's JSON log, tests).
#[derive(Clone, Default)]
pub struct Shared(pub std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.borrow().clone()).unwrap()
        }
    }

    /// A log with captured sinks and a clock the test moves.
    fn log(json: bool) -> (EventLog, Shared, Shared, Rc<Cell<u64>>) {
        let (j, h) = (Shared::default(), Shared::default());
        let jb: Option<Box<dyn Write>> = json.then(|| Box::new(j.clone()) as Box<dyn Write>);
        let mut l = EventLog::with_sinks(jb, "test".into(), Box::new(h.clone()));
        let now = Rc::new(Cell::new(0u64));
        let n = now.clone();
        l.set_clock(Box::new(move || n.get()));
        (l, j, h, now)
    }

    #[test]
    fn guest_triggered_lines_are_rate_limited_but_every_refusal_is_counted_and_logged() {
        let (mut l, j, h, now) = log(true);
        for i in 0..100_000u64 {
            now.set(i * 10); // one refusal per 10 ms: 1000 s in all
            l.vmm_refusal("mmuext_op", -22, "pin refused", 0, true);
        }
        l.finish().unwrap();
        assert_eq!(l.refusals, 100_000);
        let human = h.text();
        let refusal_lines = human.lines().filter(|x| x.contains("pin refused")).count();
        // The burst of 10, then one per 5 s of the 1000 s: 10 + 199 (t = 5 s .. 995 s).
        assert_eq!(refusal_lines, 10 + 199, "{human}");
        let suppressed: u64 = human
            .lines()
            .filter_map(|x| x.strip_prefix("vmm: "))
            .filter_map(|x| x.split_once(" messages suppressed"))
            .map(|(n, _)| n.parse::<u64>().unwrap())
            .sum();
        assert_eq!(suppressed + refusal_lines as u64, 100_000);
        assert_eq!(l.message_counts(), (209, 100_000 - 209));
        // The JSON log has all of them, numbered.
        let json = j.text();
        let recs: Vec<Value> = json
            .lines()
            .map(|x| serde_json::from_str(x).unwrap())
            .collect();
        assert_eq!(recs.len(), 100_000);
        assert!(recs
            .iter()
            .enumerate()
            .all(|(i, r)| r["rec"] == i as u64 && r["event"] == "vmm_refusal"));
    }

    #[test]
    fn notes_are_never_rate_limited_and_messages_are_cut() {
        let (mut l, _, h, _) = log(false);
        for _ in 0..50 {
            l.note("vmm: a note");
        }
        let long: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
        l.message(&long.join("\n"));
        let t = h.text();
        assert_eq!(t.lines().filter(|x| *x == "vmm: a note").count(), 50);
        assert!(
            t.contains("line 39\nvmm: ... 60 more lines (not shown)\n"),
            "{t}"
        );
        assert!(!t.contains("line 40"));
    }

    #[test]
    fn end_record_is_written_once_and_counts_the_records() {
        let (mut l, j, _, _) = log(true);
        l.record_value(&json!({ "event": "domain" }));
        l.record_value(&json!({}));
        l.record_value(&json!([1, 2]));
        l.end("guest powered off", Some(0), 1.5);
        l.end("again", None, 0.0);
        l.finish().unwrap();
        let t = j.text();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], r#"{"rec":0,"event":"domain"}"#);
        assert_eq!(lines[1], r#"{"rec":1}"#);
        assert_eq!(lines[2], r#"{"rec":2,"value":[1,2]}"#);
        let end: Value = serde_json::from_str(lines[3]).unwrap();
        assert_eq!(
            (end["rec"].as_u64(), end["records"].as_u64()),
            (Some(3), Some(4))
        );
        assert_eq!(lines.len(), 4);
    }

    /// A writer that always fails, like a closed pipe.
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
    }

    #[test]
    fn a_closed_stderr_or_log_does_not_panic() {
        let mut l = EventLog::with_sinks(Some(Box::new(Broken)), "x".into(), Box::new(Broken));
        for _ in 0..10_000 {
            l.vmm_refusal("mmu_update", -3, "bad domid", 0, true);
        }
        assert!(l.finish().is_err());
    }
}
