//! The JSON log's records as one type, [`LogRecord`]: `EventLog` writes it, `vmm replay` reads
//! it back (serde both ways), so the two cannot disagree on a key. On disk every record is one
//! object tagged `"event"` (keys sorted, `"rec": n` first, see `logging.rs`).
//!
//! Two families share the tag: the VMM's own records ([`VmmRecord`]) and the validator's
//! events ([`OpRecord`], tagged by the validator's [`Op`]).

use pagetable_validator::{Event, Op, Policy, Region, Violation, XenMsg};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Lists in an event record are cut at these lengths (`more_xen_log`, `more_violations`,
/// `more_mappings` give the rest's size): a guest can make the validator report a frame mapped
/// writable in a million places, but not make one log line unbounded.
pub const MAX_XEN_LOG: usize = 64;
pub const MAX_VIOLATIONS: usize = 16;
pub const MAX_MAPPINGS: usize = 16;
/// Provenance lines in a JSON event record.
const MAX_PROVENANCE: usize = MAX_VIOLATIONS * MAX_MAPPINGS;

/// One line of the log (without its `rec` number).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum LogRecord {
    Vmm(VmmRecord),
    Op(Box<OpRecord>),
    /// A tag neither family knows (a newer log, or an edited one).
    #[serde(skip)]
    Unknown(String),
}

impl From<VmmRecord> for LogRecord {
    fn from(r: VmmRecord) -> Self {
        LogRecord::Vmm(r)
    }
}

/// The domain record: what `vmm run` built, as replay needs it to build the same validator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DomainRecord {
    /// [`crate::logging::LOG_FORMAT`], set by `EventLog::domain`; absent in a log from before
    /// formats were numbered.
    #[serde(default)]
    pub log_format: Option<u64>,
    #[serde(default)]
    pub kernel: String,
    pub nr_frames: u64,
    #[serde(deserialize_with = "policy")]
    pub policy: Policy,
    /// How pseudo-physical frames were laid over machine frames (absent in the fuzzer's logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2m: Option<P2mRecord>,
    /// The command line as the guest got it (cut to `MAX_GUEST_CMDLINE - 1` bytes).
    #[serde(default)]
    pub cmdline: String,
    /// The initial L4's mfn.
    #[serde(default)]
    pub l4: u64,
    pub rules: RulesRecord,
    pub regions: Vec<Region>,
    /// The Xen area (absent in logs of domains without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xen: Option<XenAreaRecord>,
}

/// `--p2m`: `"identity"` or `{"shuffle": seed}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum P2mRecord {
    Identity,
    Shuffle(u64),
}

/// The validator's [`pagetable_validator::Rules`] as logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesRecord {
    pub l1_disallow: u64,
    pub linear_pt: bool,
}

impl From<pagetable_validator::Rules> for RulesRecord {
    fn from(r: pagetable_validator::Rules) -> Self {
        RulesRecord {
            l1_disallow: r.l1_disallow,
            linear_pt: r.linear_pt,
        }
    }
}

impl From<RulesRecord> for pagetable_validator::Rules {
    fn from(r: RulesRecord) -> Self {
        pagetable_validator::Rules {
            l1_disallow: r.l1_disallow,
            linear_pt: r.linear_pt,
        }
    }
}

/// The Xen area's entries in every L4 and its frames shared with the guest (see
/// `XenLayout::replay_record`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XenAreaRecord {
    pub l4_slots: Vec<u64>,
    pub ro_mpt: u64,
    pub shared: Vec<u64>,
}

/// The policy, with an error that says which field is wrong.
fn policy<'de, D: Deserializer<'de>>(d: D) -> Result<Policy, D::Error> {
    Policy::deserialize(d).map_err(|e| D::Error::custom(format!("bad policy: {e}")))
}

/// A record the VMM writes itself. Replay reads only what it replays; the other fields
/// default when absent (hand-written test logs leave them out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum VmmRecord {
    /// Record 0: the domain replay rebuilds (its sizes checked by replay before it allocates).
    Domain(DomainRecord),
    /// The mfn -> pfn table from entry `start` on.
    M2p { start: u64, m2p: Vec<u64> },
    /// Contents of frames about to be validated.
    Frames { frames: Vec<FrameContents> },
    /// MMUEXT_CLEAR_PAGE / COPY_PAGE: the destination's resulting contents.
    PageWrite {
        #[serde(default)]
        cmd: u32,
        dst: u64,
        #[serde(default)]
        src: u64,
        #[serde(default)]
        rip: u64,
        entries: Vec<(u64, u64)>,
    },
    /// Any other store the VMM makes into guest memory: guest-physical address + bytes.
    GuestWrite { gpa: u64, hex: String },
    /// A refusal decided by the VMM (not the validator).
    VmmRefusal {
        #[serde(default)]
        hypercall: String,
        #[serde(default)]
        rc: i64,
        #[serde(default)]
        why: String,
        #[serde(default)]
        rip: u64,
    },
    /// A guest pointer the VMM could not use.
    Efault {
        #[serde(default)]
        hypercall: String,
        #[serde(default)]
        what: String,
        #[serde(default)]
        fault: String,
        #[serde(default)]
        rip: u64,
    },
    /// A TLB flush request (mmuext_op).
    Flush {
        #[serde(default)]
        cmd: u32,
        #[serde(default)]
        arg1: u64,
        #[serde(default)]
        rip: u64,
    },
    /// A memory_op that moved frames: extents `from..to`.
    MemoryOp {
        #[serde(default)]
        op: u64,
        #[serde(default)]
        from: u64,
        #[serde(default)]
        to: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tot_pages: Option<u64>,
        #[serde(default)]
        rip: u64,
    },
    /// The last record: how the run ended.
    End {
        #[serde(default)]
        outcome: String,
        #[serde(default)]
        exit_status: Option<u8>,
        #[serde(default)]
        wall_s: f64,
        records: u64,
    },
    /// A record too large for one line.
    Oversized { of: String, bytes: usize },
    /// Not one of the above: tried as an [`OpRecord`].
    #[serde(other)]
    NotVmm,
}

/// One frame of a `frames` record: its non-zero entries as `[slot, value]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameContents {
    pub mfn: u64,
    pub level: u32,
    pub entries: Vec<(u64, u64)>,
}

/// A validator event as the log holds it: the event's fields with long lists cut, and the
/// context the VMM adds (which replay does not compare).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpRecord {
    pub seq: u64,
    #[serde(flatten)]
    pub op: Op,
    pub rc: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xen_log: Vec<XenMsg>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_xen_log: usize,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<ViolationRecord>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_violations: usize,
    /// The hypercall and guest RIP that led to the operation.
    #[serde(default)]
    pub hypercall: String,
    #[serde(default)]
    pub rip: u64,
    /// The human provenance lines (vmalloc offset, pkmap/fixmap slot, direct-map pfn), so
    /// tools need not re-derive them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Vec<String>>,
}

/// A violation with its mappings cut at [`MAX_MAPPINGS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViolationRecord {
    #[serde(flatten)]
    pub violation: Violation,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_mappings: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Keeps the first `max` entries of `v`; returns how many were dropped.
fn cut<T>(v: &mut Vec<T>, max: usize) -> usize {
    let more = v.len().saturating_sub(max);
    v.truncate(max);
    more
}

impl OpRecord {
    /// The record of `ev`, made by `hypercall` at `rip`; `provenance` gives the human lines
    /// of its violations (cut to [`MAX_PROVENANCE`]).
    pub fn new(
        ev: Event,
        hypercall: &str,
        rip: u64,
        provenance: impl FnOnce(&Event) -> Vec<String>,
    ) -> OpRecord {
        let provenance = (!ev.violations.is_empty()).then(|| {
            let mut lines = provenance(&ev);
            let more = cut(&mut lines, MAX_PROVENANCE);
            if more > 0 {
                lines.push(format!("... and {more} more"));
            }
            lines
        });
        let Event {
            seq,
            op,
            rc,
            mut xen_log,
            mut violations,
        } = ev;
        let more_xen_log = cut(&mut xen_log, MAX_XEN_LOG);
        let more_violations = cut(&mut violations, MAX_VIOLATIONS);
        let violations = violations
            .into_iter()
            .map(|mut violation| ViolationRecord {
                more_mappings: cut(&mut violation.mappings, MAX_MAPPINGS),
                violation,
            })
            .collect();
        OpRecord {
            seq,
            op,
            rc,
            xen_log,
            more_xen_log,
            violations,
            more_violations,
            hypercall: hypercall.to_string(),
            rip,
            provenance,
        }
    }
}

impl<'de> Deserialize<'de> for LogRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match VmmRecord::deserialize(&v).map_err(D::Error::custom)? {
            VmmRecord::NotVmm => {}
            r => return Ok(LogRecord::Vmm(r)),
        }
        match OpRecord::deserialize(&v) {
            Ok(r) => Ok(LogRecord::Op(Box::new(r))),
            // serde names an unknown tag only in its message.
            Err(_)
                if Op::deserialize(&v)
                    .is_err_and(|e| e.to_string().starts_with("unknown variant")) =>
            {
                let tag = v.get("event").and_then(Value::as_str).unwrap_or_default();
                Ok(LogRecord::Unknown(tag.to_string()))
            }
            Err(e) => Err(D::Error::custom(e)),
        }
    }
}

/// A deserialization error of record `rec` as a message naming the field when serde does not
/// (it names none for a value of the wrong type): `"mfn" is not an unsigned 64-bit number`.
pub fn explain(rec: &Value, err: &serde_json::Error) -> String {
    let msg = err.to_string();
    let (unexpected, expected) = match msg
        .strip_prefix("invalid type: ")
        .or_else(|| msg.strip_prefix("invalid value: "))
        .and_then(|m| m.split_once(", expected "))
    {
        Some(p) => p,
        None => return msg,
    };
    let what = match expected {
        "u64" => "an unsigned 64-bit number",
        "u32" => "an unsigned 32-bit number",
        "u16" => "an unsigned 16-bit number",
        "u8" => "an unsigned 8-bit number",
        "i64" => "a signed 64-bit number",
        other => other,
    };
    let key = rec.as_object().and_then(|m| {
        m.iter()
            .find(|(_, v)| is_unexpected(v, unexpected))
            .map(|(k, _)| k)
    });
    match key {
        Some(k) => format!("{k:?} is not {what}"),
        None => msg,
    }
}

/// Whether `v` is the value serde names `unexpected` (`serde::de::Unexpected`'s Display:
/// "integer `-1`", "string \"x\"", "floating point `1e+300`", ...). Floats match by kind:
/// serde's float formatting is its own.
fn is_unexpected(v: &Value, unexpected: &str) -> bool {
    match v {
        Value::Null => unexpected == "null",
        Value::Bool(b) => unexpected == format!("boolean `{b}`"),
        Value::Number(n) if n.is_f64() => unexpected.starts_with("floating point `"),
        Value::Number(n) => unexpected == format!("integer `{n}`"),
        Value::String(s) => unexpected == format!("string {s:?}"),
        Value::Array(_) => unexpected == "sequence",
        Value::Object(_) => unexpected == "map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_families_and_unknown_tags_read_back() {
        let r: LogRecord =
            serde_json::from_value(json!({ "event": "flush", "cmd": 6, "arg1": 0, "rip": 9 }))
                .unwrap();
        assert_eq!(
            r,
            LogRecord::Vmm(VmmRecord::Flush {
                cmd: 6,
                arg1: 0,
                rip: 9
            })
        );
        let pin = json!({ "rec": 3, "seq": 1, "event": "pin", "level": 1, "mfn": 5, "pfn": null,
            "rc": -22, "hypercall": "mmuext_op", "rip": 7 });
        let LogRecord::Op(r) = serde_json::from_value(pin).unwrap() else {
            panic!("not an operation")
        };
        assert_eq!(
            (r.op, r.rc, r.rip),
            (
                Op::Pin {
                    level: 1,
                    mfn: pagetable_validator::Mfn(5),
                    pfn: None
                },
                -22,
                7
            )
        );
        let r: LogRecord = serde_json::from_value(json!({ "event": "bogus", "x": 1 })).unwrap();
        assert_eq!(r, LogRecord::Unknown("bogus".into()));
        // A known tag with a bad field is an error, not an unknown record.
        let e = serde_json::from_value::<LogRecord>(
            json!({ "event": "pin", "level": -1, "mfn": 5, "seq": 0, "rc": 0 }),
        );
        assert!(e.unwrap_err().to_string().contains("-1"));
        let e =
            serde_json::from_value::<LogRecord>(json!({ "event": "m2p", "start": "x", "m2p": [] }));
        assert!(e.is_err());
    }

    #[test]
    fn a_field_of_the_wrong_type_is_named() {
        for (rec, want) in [
            (
                json!({ "event": "unpin", "mfn": "3", "seq": 0, "rc": 0 }),
                r#""mfn" is not an unsigned 64-bit number"#,
            ),
            (
                json!({ "event": "pin", "level": -1, "mfn": 5, "seq": 0, "rc": 0 }),
                r#""level" is not an unsigned 32-bit number"#,
            ),
            (
                json!({ "event": "m2p", "start": 1.5, "m2p": [] }),
                r#""start" is not an unsigned 64-bit number"#,
            ),
        ] {
            let e = serde_json::from_value::<LogRecord>(rec.clone()).unwrap_err();
            assert_eq!(explain(&rec, &e), want);
        }
    }

    #[test]
    fn records_serialize_with_their_tag() {
        let r = LogRecord::Vmm(VmmRecord::GuestWrite {
            gpa: 16,
            hex: "00".into(),
        });
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({ "event": "guest_write", "gpa": 16, "hex": "00" })
        );
    }
}
