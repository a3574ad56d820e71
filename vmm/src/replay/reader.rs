//! Reading a log as hostile input: one bounded line at a time ([`MAX_LINE`]), record fields of
//! the right type, the domain record with every size checked against what `vmm run` can
//! produce, and the record numbers that reveal a deleted, repeated or moved line.

use super::apply::Replayer;
use super::MAX_FRAMES;
use crate::logging::{LOG_FORMAT, MAX_LINE};
use pagetable_validator::pte::PAGE_SIZE;
use pagetable_validator::{Policy, Region, Rules, XEN_L4_SLOTS};
use serde_json::Value;
use std::io::BufRead;

/// Most regions in a domain record (the builder writes 12).
const MAX_REGIONS: usize = 256;
/// Longest region name.
const MAX_NAME: usize = 256;

pub(super) enum Line {
    Eof,
    Complete,
    /// The last line of the file, without its newline.
    Unterminated,
    TooLong,
}

/// Reads one line (without the newline) into `buf`, at most [`MAX_LINE`] bytes.
pub(super) fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Line> {
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
pub(super) struct Domain {
    pub(super) nr: u64,
    pub(super) policy: Policy,
    pub(super) rules: Rules,
    pub(super) regions: Vec<Region>,
    /// The Xen area (absent in logs of domains without one).
    pub(super) xen: Option<Box<XenArea>>,
}

/// The domain record's `"xen"`: see `XenLayout::replay_record`.
pub(super) struct XenArea {
    pub(super) l4_slots: [u64; XEN_L4_SLOTS],
    pub(super) ro_mpt: u64,
    pub(super) shared: Vec<u64>,
}

fn xen_area(x: &Value) -> Result<Box<XenArea>, String> {
    let list = array(x, "l4_slots")?;
    if list.len() != XEN_L4_SLOTS {
        return Err(format!(
            "{} Xen L4 slots (Xen has {XEN_L4_SLOTS})",
            list.len()
        ));
    }
    let mut l4_slots = [0u64; XEN_L4_SLOTS];
    for (s, e) in l4_slots.iter_mut().zip(list) {
        *s = e.as_u64().ok_or("a Xen L4 slot is not a number")?;
    }
    let list = array(x, "shared")?;
    if list.len() > XEN_L4_SLOTS {
        return Err(format!(
            "{} shared Xen frames (at most {XEN_L4_SLOTS})",
            list.len()
        ));
    }
    let mut shared = Vec::with_capacity(list.len());
    for f in list {
        // Xen's own frames lie outside the domain's: any number (the count is bounded).
        shared.push(f.as_u64().ok_or("a shared Xen frame is not a number")?);
    }
    Ok(Box::new(XenArea {
        l4_slots,
        ro_mpt: num(x, "ro_mpt")?,
        shared,
    }))
}

pub(super) fn get<'a>(v: &'a Value, k: &str) -> Result<&'a Value, String> {
    v.get(k).ok_or_else(|| format!("record lacks {k:?}"))
}

pub(super) fn num(v: &Value, k: &str) -> Result<u64, String> {
    get(v, k)?
        .as_u64()
        .ok_or_else(|| format!("{k:?} is not an unsigned 64-bit number"))
}

pub(super) fn array<'a>(v: &'a Value, k: &str) -> Result<&'a Vec<Value>, String> {
    get(v, k)?
        .as_array()
        .ok_or_else(|| format!("{k:?} is not an array"))
}

impl Replayer {
    /// `rec` must count the lines: 0, 1, 2, ... Returns the record's number.
    pub(super) fn check_sequence(&mut self, rec: &Value, lineno: u64) -> Result<u64, String> {
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
        Ok(n)
    }
}

/// A domain record, with every size checked against what `vmm run` can produce.
pub(super) fn domain(rec: &Value) -> Result<Domain, String> {
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
    let xen = rec.get("xen").map(xen_area).transpose()?;
    Ok(Domain {
        nr,
        policy,
        rules,
        regions,
        xen,
    })
}

pub(super) fn unhex(s: &str) -> Result<Vec<u8>, String> {
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
