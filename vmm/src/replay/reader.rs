//! Reading a log as hostile input: one bounded line at a time ([`MAX_LINE`]), record fields of
//! the right type, the domain record with every size checked against what `vmm run` can
//! produce, and the record numbers that reveal a deleted, repeated or moved line.

use super::apply::Replayer;
use super::MAX_FRAMES;
use crate::log_record::{DomainRecord, XenAreaRecord};
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

fn xen_area(x: XenAreaRecord) -> Result<Box<XenArea>, String> {
    let l4_slots: [u64; XEN_L4_SLOTS] = x
        .l4_slots
        .as_slice()
        .try_into()
        .map_err(|_| format!("{} Xen L4 slots (Xen has {XEN_L4_SLOTS})", x.l4_slots.len()))?;
    // Xen's own frames lie outside the domain's: any number, but a bounded count.
    if x.shared.len() > XEN_L4_SLOTS {
        return Err(format!(
            "{} shared Xen frames (at most {XEN_L4_SLOTS})",
            x.shared.len()
        ));
    }
    Ok(Box::new(XenArea {
        l4_slots,
        ro_mpt: x.ro_mpt,
        shared: x.shared,
    }))
}

pub(super) fn get<'a>(v: &'a Value, k: &str) -> Result<&'a Value, String> {
    v.get(k).ok_or_else(|| format!("record lacks {k:?}"))
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
pub(super) fn domain(d: DomainRecord) -> Result<Domain, String> {
    match d.log_format {
        Some(LOG_FORMAT) => {}
        None => {
            return Err(format!(
                "no log_format: written by an older vmm (this replay reads format {LOG_FORMAT}, with record numbers)"
            ))
        }
        Some(x) => return Err(format!("log format {x} (this replay reads format {LOG_FORMAT})")),
    }
    let nr = d.nr_frames;
    if nr == 0 || nr > MAX_FRAMES {
        return Err(format!(
            "nr_frames {nr} out of range (1..={MAX_FRAMES}: vmm run builds at most 65536 MiB)"
        ));
    }
    if d.regions.len() > MAX_REGIONS {
        return Err(format!(
            "{} regions (at most {MAX_REGIONS})",
            d.regions.len()
        ));
    }
    if let Some(r) = d.regions.iter().find(|r| r.name.len() > MAX_NAME) {
        return Err(format!(
            "region name of {} bytes (at most {MAX_NAME})",
            r.name.len()
        ));
    }
    Ok(Domain {
        nr,
        policy: d.policy,
        rules: d.rules.into(),
        regions: d.regions,
        xen: d.xen.map(xen_area).transpose()?,
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
