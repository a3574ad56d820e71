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

use crate::logging::{event_value, LOG_FORMAT, M2P_PER_RECORD, MAX_LINE};
use pagetable_validator::abi::{self, MmuUpdate};
use pagetable_validator::pte::{self, PAGE_SIZE};
use pagetable_validator::{GuestFrames, Policy, Region, Rules, Validator, VecFrames};
use serde_json::Value;
use std::io::{BufRead, Read};
use std::path::Path;
use thiserror::Error;

/// The largest domain `vmm run` builds (`--mem` at most 65536 MiB), in frames.
pub const MAX_FRAMES: u64 = 65536 * 256;
/// Most regions in a domain record (the builder writes 12).
const MAX_REGIONS: usize = 256;
/// Longest region name.
const MAX_NAME: usize = 256;
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

enum Line {
    Eof,
    Complete,
    /// The last line of the file, without its newline.
    Unterminated,
    TooLong,
}

/// Reads one line (without the newline) into `buf`, at most [`MAX_LINE`] bytes.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok(if buf.is_empty() {
                Line::Eof
            } else {
                Line::Unterminated
            });
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > MAX_LINE {
            return Ok(Line::TooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(take + usize::from(done));
        if done {
            return Ok(Line::Complete);
        }
    }
}

/// The domain record, checked.
struct Domain {
    nr: u64,
    policy: Policy,
    rules: Rules,
    regions: Vec<Region>,
}

#[derive(Default)]
enum Phase {
    #[default]
    Start,
    /// After the domain record: m2p records until the table is complete.
    M2p {
        dom: Domain,
        m2p: Vec<u64>,
    },
    Ops {
        v: Box<Validator>,
        mem: VecFrames,
    },
}

#[derive(Default)]
struct Replayer {
    phase: Phase,
    next_rec: u64,
    ended: bool,
    report: ReplayReport,
}

fn get<'a>(v: &'a Value, k: &str) -> Result<&'a Value, String> {
    v.get(k).ok_or_else(|| format!("record lacks {k:?}"))
}

fn num(v: &Value, k: &str) -> Result<u64, String> {
    get(v, k)?
        .as_u64()
        .ok_or_else(|| format!("{k:?} is not an unsigned 64-bit number"))
}

fn array<'a>(v: &'a Value, k: &str) -> Result<&'a Vec<Value>, String> {
    get(v, k)?
        .as_array()
        .ok_or_else(|| format!("{k:?} is not an array"))
}

/// The comparable part of an event record: everything the validator wrote, without the
/// context the VMM added and the sequence numbers. Accessed/dirty bits in the `old`/`new` entry
/// values are masked: the CPU sets them in live tables behind everyone's back (and
/// MMU_PT_UPDATE_PRESERVE_AD carries them over), so no log can predict them.
fn comparable(mut v: Value) -> Value {
    const AD: u64 = pte::_PAGE_ACCESSED | pte::_PAGE_DIRTY;
    if let Value::Object(m) = &mut v {
        for k in ["hypercall", "rip", "seq", "rec", "provenance"] {
            m.remove(k);
        }
        for k in ["old", "new"] {
            if let Some(x) = m.get(k).and_then(Value::as_u64) {
                m.insert(k.into(), Value::from(x & !AD));
            }
        }
    }
    v
}

/// A short form of a record for messages.
fn brief(v: &Value) -> String {
    let s = v.to_string();
    if s.len() <= 300 {
        return s;
    }
    let mut n = 300;
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    format!("{}...", &s[..n])
}

impl Replayer {
    fn apply(&mut self, rec: Value, lineno: u64) -> Result<(), String> {
        if !rec.is_object() {
            return Err("not a JSON object".into());
        }
        self.report.records += 1;
        self.check_sequence(&rec, lineno)?;
        let ev = get(&rec, "event")?
            .as_str()
            .ok_or("\"event\" is not a string")?
            .to_string();
        if self.ended {
            self.report.integrity.push(format!(
                "line {lineno}: a {ev:?} record after the end record"
            ));
        }
        match std::mem::take(&mut self.phase) {
            Phase::Start => {
                if ev != "domain" {
                    return Err(format!(
                        "the first record must be the domain record, not {ev:?}"
                    ));
                }
                self.phase = Phase::M2p {
                    dom: domain(&rec)?,
                    m2p: Vec::new(),
                };
                Ok(())
            }
            Phase::M2p { dom, mut m2p } if ev == "m2p" => {
                let start = num(&rec, "start")?;
                let chunk = array(&rec, "m2p")?;
                if start != m2p.len() as u64 {
                    return Err(format!(
                        "m2p record starts at {start}, expected {} (a record missing?)",
                        m2p.len()
                    ));
                }
                if chunk.len() > M2P_PER_RECORD || start + chunk.len() as u64 > dom.nr {
                    return Err(format!(
                        "m2p record of {} entries at {start}: more than the domain's {} frames or {M2P_PER_RECORD} per record",
                        chunk.len(),
                        dom.nr
                    ));
                }
                for x in chunk {
                    m2p.push(x.as_u64().ok_or("m2p entry is not a number")?);
                }
                self.phase = Phase::M2p { dom, m2p };
                Ok(())
            }
            Phase::M2p { dom, m2p } => {
                if m2p.len() as u64 != dom.nr {
                    return Err(format!(
                        "{ev:?} record before the m2p is complete ({} of {} entries)",
                        m2p.len(),
                        dom.nr
                    ));
                }
                // Every size is checked: now allocate (12 bytes per frame + the sparse frames).
                let mut v = Validator::with_rules(dom.nr, dom.policy, dom.rules);
                v.set_m2p(m2p);
                v.set_regions(dom.regions);
                let mem = VecFrames::new(dom.nr);
                self.phase = Phase::Ops {
                    v: Box::new(v),
                    mem,
                };
                self.op(&ev, rec, lineno)
            }
            Phase::Ops { v, mem } => {
                self.phase = Phase::Ops { v, mem };
                self.op(&ev, rec, lineno)
            }
        }
    }

    /// `rec` must count the lines: 0, 1, 2, ...
    fn check_sequence(&mut self, rec: &Value, lineno: u64) -> Result<(), String> {
        let n = rec
            .get("rec")
            .ok_or("record without its number (\"rec\"): not a vmm log of this version, or edited")?
            .as_u64()
            .ok_or("\"rec\" is not a number")?;
        let want = self.next_rec;
        if n > want {
            let missing = if n - want == 1 {
                format!("record {want} is missing")
            } else {
                format!("records {want}..={} are missing", n - 1)
            };
            self.report.integrity.push(format!(
                "line {lineno}: {missing} (this line is record {n})"
            ));
        } else if n < want {
            self.report.integrity.push(format!(
                "line {lineno}: record {n} again or out of order (expected record {want})"
            ));
        }
        self.next_rec = self.next_rec.max(n.saturating_add(1));
        Ok(())
    }

    /// A record after the m2p: frame contents, a VMM write, or an operation to replay.
    fn op(&mut self, ev: &str, rec: Value, lineno: u64) -> Result<(), String> {
        let Phase::Ops { v, mem } = &mut self.phase else {
            unreachable!("called in the Ops phase")
        };
        let v: &mut Validator = v;
        let nr = GuestFrames::nr_frames(mem);
        let r = match ev {
            "frames" => {
                for f in array(&rec, "frames")? {
                    let mfn = num(f, "mfn")?;
                    if mfn >= nr {
                        return Err(format!("frame {mfn:#x} outside the domain ({nr} frames)"));
                    }
                    let entries = parse_entries(f)?;
                    set_frame(mem, mfn, &entries);
                }
                return Ok(());
            }
            "page_write" => {
                let dst = num(&rec, "dst")?;
                if dst >= nr {
                    return Err(format!("page_write to frame {dst:#x} outside the domain"));
                }
                let entries = parse_entries(&rec)?;
                self.check_vmm_write(dst, lineno);
                let Phase::Ops { mem, .. } = &mut self.phase else {
                    unreachable!()
                };
                set_frame(mem, dst, &entries);
                return Ok(());
            }
            "guest_write" => {
                let gpa = num(&rec, "gpa")?;
                let bytes = unhex(
                    get(&rec, "hex")?
                        .as_str()
                        .ok_or("\"hex\" is not a string")?,
                )?;
                let off = (gpa & (PAGE_SIZE - 1)) as usize;
                if gpa >> 12 >= nr || off + bytes.len() > PAGE_SIZE as usize {
                    return Err(format!(
                        "guest_write of {} bytes at {gpa:#x}: outside the domain or across a page",
                        bytes.len()
                    ));
                }
                self.check_vmm_write(gpa >> 12, lineno);
                let Phase::Ops { mem, .. } = &mut self.phase else {
                    unreachable!()
                };
                write_bytes(mem, gpa >> 12, off, &bytes);
                return Ok(());
            }
            "end" => {
                self.ended = true;
                let n = num(&rec, "records")?;
                let this = num(&rec, "rec")?;
                if n != this.saturating_add(1) {
                    self.report.integrity.push(format!(
                        "line {lineno}: the end record counts {n} records but is record {this}"
                    ));
                }
                return Ok(());
            }
            "oversized" => {
                self.report.mismatches.push(format!(
                    "line {lineno}: a record the VMM could not log (too large): {}",
                    brief(&rec)
                ));
                return Ok(());
            }
            // VMM decisions without validator state: nothing to replay.
            "vmm_refusal" | "efault" | "flush" => return Ok(()),
            "domain" | "m2p" => {
                return Err(format!("a second {ev:?} record"));
            }
            "register_initial" => v.register_initial(mem, num(&rec, "l4")?),
            "pin" => {
                let level = u32::try_from(num(&rec, "level")?)
                    .map_err(|_| "\"level\" out of range".to_string())?;
                v.pin(mem, level, num(&rec, "mfn")?)
            }
            "unpin" => v.unpin(mem, num(&rec, "mfn")?),
            "new_baseptr" => v.new_baseptr(mem, num(&rec, "mfn")?),
            "new_user_baseptr" => v.new_user_baseptr(mem, num(&rec, "mfn")?),
            "set_gdt" => {
                let list = array(&rec, "frames")?;
                // Xen's limit: 14 pages of descriptors below its reserved page.
                if list.len() > 14 {
                    return Err(format!(
                        "\"frames\" has {} entries (at most 14)",
                        list.len()
                    ));
                }
                let frames = list
                    .iter()
                    .map(|f| {
                        f.as_u64()
                            .ok_or_else(|| "a GDT frame is not a number".to_string())
                    })
                    .collect::<Result<Vec<u64>, String>>()?;
                let entries = u32::try_from(num(&rec, "entries")?)
                    .map_err(|_| "\"entries\" out of range".to_string())?;
                v.set_gdt(mem, &frames, entries)
            }
            "update_descriptor" => {
                v.update_descriptor(mem, num(&rec, "maddr")?, num(&rec, "desc")?)
            }
            "mmu_update" => {
                let req = MmuUpdate {
                    ptr: num(&rec, "ptr")?,
                    val: num(&rec, "val")?,
                };
                self.report.guest_entries += u64::from(seed_plain_entry(v, mem, &rec, req));
                v.mmu_update(mem, req)
            }
            "machphys_update" => {
                let mfn = num(&rec, "mfn")?;
                if mfn > u64::MAX >> 12 {
                    return Err("\"mfn\" out of range".into());
                }
                v.mmu_update(
                    mem,
                    MmuUpdate {
                        ptr: (mfn << 12) | abi::mmu::MACHPHYS_UPDATE,
                        val: num(&rec, "pfn")?,
                    },
                )
            }
            "update_va_mapping" => v.update_va_mapping(
                mem,
                num(&rec, "va")?,
                num(&rec, "val")?,
                num(&rec, "flags")?,
            ),
            other => {
                self.report.integrity.push(format!(
                    "line {lineno}: unknown record kind {other:?} (ignored)"
                ));
                return Ok(());
            }
        };
        self.report.operations += 1;
        let events = v.drain_events();
        let got: Vec<Value> = events.iter().map(|e| comparable(event_value(e))).collect();
        let want = comparable(rec);
        if got.len() != 1 || got[0] != want {
            self.report.mismatches.push(format!(
                "line {lineno}: logged {}\n  replayed ({}) {}",
                brief(&want),
                r.err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "ok".into()),
                got.iter().map(brief).collect::<Vec<_>>().join(" | ")
            ));
        }
        Ok(())
    }

    /// The VMM never writes into a validated table behind the validator.
    fn check_vmm_write(&mut self, mfn: u64, lineno: u64) {
        let Phase::Ops { v, .. } = &self.phase else {
            return;
        };
        if v.frame_info(mfn)
            .is_some_and(|i| i.validated && i.ty.is_table())
        {
            self.report.mismatches.push(format!(
                "line {lineno}: the VMM wrote into mfn {mfn:#x}, a validated {:?} table",
                v.page_type(mfn)
            ));
        }
    }
}

/// An `mmu_update` of a plain frame (level 0 in the log and here): the entry's previous value
/// is the guest's (it may store there directly), so it is taken from the record. Returns
/// whether it differed from what replay had.
fn seed_plain_entry(v: &Validator, mem: &mut VecFrames, rec: &Value, req: MmuUpdate) -> bool {
    if req.ptr & 7 == abi::mmu::MACHPHYS_UPDATE
        || rec.get("level").and_then(Value::as_u64) != Some(0)
    {
        return false;
    }
    let (table, slot) = (req.ptr >> 12, ((req.ptr & 0xfff) >> 3) as usize);
    let plain = !v
        .frame_info(table)
        .is_some_and(|i| i.validated && i.ty.is_table());
    let Some(old) = rec.get("old").and_then(Value::as_u64) else {
        return false;
    };
    if !plain || table >= GuestFrames::nr_frames(mem) || mem.read_entry(table, slot) == old {
        return false;
    }
    mem.write_entry(table, slot, old);
    true
}

/// A domain record, with every size checked against what `vmm run` can produce.
fn domain(rec: &Value) -> Result<Domain, String> {
    match rec.get("log_format").map(Value::as_u64) {
        Some(Some(LOG_FORMAT)) => {}
        None => {
            return Err(format!(
                "no log_format: written by an older vmm (this replay reads format {LOG_FORMAT}, with record numbers)"
            ))
        }
        Some(x) => {
            return Err(format!(
                "log format {} (this replay reads format {LOG_FORMAT})",
                x.map_or_else(|| "?".to_string(), |x| x.to_string())
            ))
        }
    }
    let nr = num(rec, "nr_frames")?;
    if nr == 0 || nr > MAX_FRAMES {
        return Err(format!(
            "nr_frames {nr} out of range (1..={MAX_FRAMES}: vmm run builds at most 65536 MiB)"
        ));
    }
    let policy: Policy = serde_json::from_value(get(rec, "policy")?.clone())
        .map_err(|e| format!("bad policy: {e}"))?;
    let r = get(rec, "rules")?;
    let rules = Rules {
        l1_disallow: num(r, "l1_disallow")?,
        linear_pt: get(r, "linear_pt")?
            .as_bool()
            .ok_or("\"linear_pt\" is not a boolean")?,
    };
    let list = array(rec, "regions")?;
    if list.len() > MAX_REGIONS {
        return Err(format!("{} regions (at most {MAX_REGIONS})", list.len()));
    }
    let mut regions = Vec::with_capacity(list.len());
    for x in list {
        let name = get(x, "name")?
            .as_str()
            .ok_or("region name is not a string")?;
        if name.len() > MAX_NAME {
            return Err(format!(
                "region name of {} bytes (at most {MAX_NAME})",
                name.len()
            ));
        }
        regions.push(Region::new(name, num(x, "start")?, num(x, "end")?));
    }
    Ok(Domain {
        nr,
        policy,
        rules,
        regions,
    })
}

/// `"entries": [[slot, value], ...]` of a frame: at most 512, slots below 512.
fn parse_entries(f: &Value) -> Result<Vec<(usize, u64)>, String> {
    let list = array(f, "entries")?;
    if list.len() > pte::ENTRIES {
        return Err(format!("{} entries in one frame", list.len()));
    }
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let pair = e
            .as_array()
            .filter(|p| p.len() == 2)
            .ok_or("entry is not [slot, value]")?;
        let slot = pair[0]
            .as_u64()
            .filter(|&s| s < pte::ENTRIES as u64)
            .ok_or("entry slot not in 0..512")?;
        let val = pair[1].as_u64().ok_or("entry value is not a number")?;
        out.push((slot as usize, val));
    }
    Ok(out)
}

fn set_frame(mem: &mut VecFrames, mfn: u64, entries: &[(usize, u64)]) {
    let frame = mem.frame_mut(mfn);
    frame.fill(0);
    for &(slot, val) in entries {
        frame[slot] = val;
    }
}

/// Bytes at offset `off` of frame `mfn` (inside the frame: checked by the caller).
fn write_bytes(mem: &mut VecFrames, mfn: u64, off: usize, bytes: &[u8]) {
    let frame = mem.frame_mut(mfn);
    for (i, &b) in bytes.iter().enumerate() {
        let at = off + i;
        let (slot, shift) = (at / 8, (at % 8) * 8);
        frame[slot] = (frame[slot] & !(0xff << shift)) | (u64::from(b) << shift);
    }
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * PAGE_SIZE as usize {
        return Err(format!(
            "\"hex\" of {} digits (an even number, at most 8192)",
            s.len()
        ));
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err("\"hex\" has a character that is not a lower-case hex digit".to_string()),
    };
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(log: &[u8]) -> Vec<String> {
        String::from_utf8(log.to_vec())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn join(l: &[String]) -> Vec<u8> {
        let mut s = l.join("\n");
        s.push('\n');
        s.into_bytes()
    }

    fn run(log: &[u8]) -> Result<ReplayReport, ReplayError> {
        replay_from(log, "test.jsonl")
    }

    fn integrity(log: &[u8]) -> String {
        let r = run(log).unwrap_or_else(|e| panic!("{e}"));
        assert!(!r.clean());
        r.integrity.shown.join("\n")
    }

    /// An honest log and its lines; the index of the first line of `kind`.
    fn sample() -> (Vec<u8>, Vec<String>) {
        let log = crate::fuzz::sample_log(300, 11);
        let l = lines(&log);
        (log, l)
    }

    fn first(l: &[String], kind: &str) -> usize {
        let pat = format!("\"event\":\"{kind}\"");
        l.iter().position(|x| x.contains(&pat)).unwrap()
    }

    #[test]
    fn an_honest_log_replays_identically() {
        let (log, l) = sample();
        let r = run(&log).unwrap();
        assert!(r.clean(), "{:?}", r);
        assert_eq!(r.records, l.len() as u64);
        assert!(r.operations > 100, "{}", r.operations);
    }

    #[test]
    fn a_deleted_line_is_a_gap() {
        let (_, mut l) = sample();
        let i = first(&l, "mmu_update");
        l.remove(i);
        let t = integrity(&join(&l));
        assert!(t.contains(&format!("record {i} is missing")), "{t}");
    }

    #[test]
    fn moved_and_repeated_lines_are_reported() {
        let (_, l) = sample();
        let i = first(&l, "pin");
        let mut swapped = l.clone();
        swapped.swap(i, i + 1);
        let t = integrity(&join(&swapped));
        assert!(t.contains("out of order"), "{t}");
        let mut twice = l.clone();
        twice.insert(i, l[i].clone());
        let t = integrity(&join(&twice));
        assert!(
            t.contains(&format!("record {i} again or out of order")),
            "{t}"
        );
    }

    #[test]
    fn a_killed_run_has_no_end_record() {
        let (_, mut l) = sample();
        l.pop();
        let t = integrity(&join(&l));
        assert!(t.contains("no end record"), "{t}");
        // Killed in the middle of writing a line: the cut line is named too.
        let mut cut = join(&l);
        cut.truncate(cut.len() - 20);
        let t = integrity(&cut);
        assert!(
            t.contains("is cut off") && t.contains("no end record"),
            "{t}"
        );
        // Records after the end record.
        let (_, mut l) = sample();
        let extra = l[l.len() - 2].clone();
        l.push(extra);
        let t = integrity(&join(&l));
        assert!(t.contains("after the end record"), "{t}");
    }

    #[test]
    fn an_edited_result_is_a_difference() {
        let (log, _) = sample();
        let text = String::from_utf8(log).unwrap();
        let edited = text.replacen("\"rc\":-22", "\"rc\":0", 1);
        assert_ne!(text, edited);
        let r = run(edited.as_bytes()).unwrap();
        assert_eq!(r.mismatches.total, 1, "{:?}", r.mismatches);
        assert_eq!(r.integrity.total, 0);
    }

    /// Sizes are checked before anything is allocated; each bad value is one error.
    #[test]
    fn absurd_sizes_and_wrong_types_are_errors_not_panics() {
        let (_, l) = sample();
        for (from, to, want) in [
            (
                "\"nr_frames\":1024",
                "\"nr_frames\":1099511627776",
                "out of range",
            ),
            (
                "\"nr_frames\":1024",
                "\"nr_frames\":18446744073709551615",
                "out of range",
            ),
            ("\"nr_frames\":1024", "\"nr_frames\":0", "out of range"),
            ("\"nr_frames\":1024", "\"nr_frames\":-1", "not an unsigned"),
            (
                "\"nr_frames\":1024",
                "\"nr_frames\":1e300",
                "not an unsigned",
            ),
            ("\"log_format\":2", "\"log_format\":1", "log format 1"),
            ("\"log_format\":2,", "", "no log_format"),
            (
                "\"policy\":\"enforce\"",
                "\"policy\":\"lenient\"",
                "bad policy",
            ),
        ] {
            let mut e = l.clone();
            assert!(e[0].contains(from), "{from} not in {}", e[0]);
            e[0] = e[0].replacen(from, to, 1);
            let err = run(&join(&e)).unwrap_err().to_string();
            assert!(
                err.contains(want) && err.contains("line 1"),
                "{from}: {err}"
            );
            assert!(!err.contains('\n'));
        }
        let mut e = l.clone();
        let i = first(&l, "pin");
        e[i] = e[i].replacen("\"level\":", "\"level\":1099511627776", 1);
        let err = run(&join(&e)).unwrap_err().to_string();
        assert!(err.contains(&format!("line {}", i + 1)), "{err}");
        let mut e = l.clone();
        e[1] = e[1].replacen("\"start\":0", "\"start\":5", 1);
        assert!(run(&join(&e))
            .unwrap_err()
            .to_string()
            .contains("m2p record starts at 5"));
        let i = first(&l, "frames");
        let mut e = l.clone();
        e[i] = e[i].replacen("\"entries\":[[", "\"entries\":[[512,1],[", 1);
        let err = run(&join(&e)).unwrap_err().to_string();
        assert!(err.contains("0..512"), "{err}");
    }

    #[test]
    fn not_a_log_is_one_error() {
        assert!(matches!(run(b""), Err(ReplayError::Empty { .. })));
        let mut x = 0x1234_5678_9abc_def1u64;
        let noise: Vec<u8> = (0..100_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let e = run(&noise).unwrap_err();
        assert!(matches!(e, ReplayError::NotJson { line: 1, .. }), "{e}");
        assert!(matches!(
            run(b"{\"rec\":0,\"event\":\"pin\"}\n"),
            Err(ReplayError::Record { line: 1, .. })
        ));
        assert!(matches!(run(b"[1,2,3]\n"), Err(ReplayError::Record { .. })));
        // 10 GB of zeros, streamed: stops at the line limit without reading the rest.
        let zeros = std::io::repeat(0).take(10 << 30);
        let e = replay_from(zeros, "zeros").unwrap_err();
        assert!(matches!(e, ReplayError::LineTooLong { line: 1, .. }), "{e}");
        // A domain record and nothing else.
        let (_, l) = sample();
        let e = run(&join(&l[..1])).unwrap_err();
        assert!(
            matches!(
                e,
                ReplayError::NoOperations {
                    have: 0,
                    want: 1024,
                    ..
                }
            ),
            "{e}"
        );
    }

    /// Random damage to an honest log: never a panic, always Ok or one error.
    #[test]
    fn mutated_logs_never_panic() {
        let (log, l) = sample();
        let mut x = 99u64;
        let mut rnd = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for _ in 0..300 {
            let mut m = match rnd(3) {
                0 => {
                    let mut b = log.clone();
                    for _ in 0..1 + rnd(8) {
                        let at = rnd(b.len());
                        b[at] = b"0123456789-\"{}[],:ex \n"[rnd(22)];
                    }
                    b
                }
                1 => {
                    let mut e = l.clone();
                    let i = rnd(e.len());
                    let j = rnd(e.len());
                    e.swap(i, j);
                    e.remove(rnd(e.len()));
                    join(&e)
                }
                _ => {
                    let mut e = l.clone();
                    let i = rnd(e.len());
                    // A number replaced by an extreme one.
                    e[i] = e[i].replacen(":1", ":18446744073709551615", 1);
                    join(&e)
                }
            };
            if rnd(4) == 0 {
                m.truncate(rnd(m.len()));
            }
            let _ = run(&m);
        }
    }
}
