//! `vmm replay FILE.jsonl`: re-runs a `--log` offline through a fresh validator over plain
//! in-memory frames and checks that every operation gives the same event (result, Xen's lines,
//! provenance). It proves the log holds enough to reproduce the run, and lets a verdict be
//! debugged without KVM.
//!
//! Exact for the enforce policy. Under audit, a guest may write directly through a tolerated
//! stray RW mapping into a validated table; such writes are not in the log.

use pagetable_validator::abi::MmuUpdate;
use pagetable_validator::pte;
use pagetable_validator::{GuestFrames, Policy, Region, Rules, Validator, VecFrames, XenError};
use serde_json::Value;
use std::io::BufRead;
use std::path::Path;
use thiserror::Error;

pub struct ReplayReport {
    pub operations: u64,
    pub mismatches: Vec<String>,
}

fn num(v: &Value, k: &str) -> Result<u64, String> {
    v[k].as_u64()
        .ok_or_else(|| format!("record lacks numeric {k:?}: {v}"))
}

/// The comparable part of an event record: everything the validator wrote, without the
/// context the VMM added and the sequence number. Accessed/dirty bits in the `old`/`new` entry
/// values are masked: the CPU sets them in live tables behind everyone's back (and
/// MMU_PT_UPDATE_PRESERVE_AD carries them over), so no log can predict them.
fn comparable(mut v: Value) -> Value {
    const AD: u64 = pte::_PAGE_ACCESSED | pte::_PAGE_DIRTY;
    if let Value::Object(m) = &mut v {
        for k in ["hypercall", "rip", "seq", "provenance"] {
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

#[derive(Debug, Error)]
pub enum ReplayError {
    #[error("cannot read {path}: {err}")]
    Io { path: String, err: std::io::Error },
    #[error("{path} line {line}: {msg}")]
    Record {
        path: String,
        line: usize,
        msg: String,
    },
    #[error("{0}: no domain record")]
    NoDomain(String),
}

type State = Option<(Validator, VecFrames)>;

pub fn replay(path: &Path) -> Result<ReplayReport, ReplayError> {
    let shown = path.display().to_string();
    let io = |err| ReplayError::Io {
        path: shown.clone(),
        err,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut state: State = None;
    let mut report = ReplayReport {
        operations: 0,
        mismatches: Vec::new(),
    };
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        apply(&line, i + 1, &mut state, &mut report).map_err(|msg| ReplayError::Record {
            path: shown.clone(),
            line: i + 1,
            msg,
        })?;
    }
    if state.is_none() {
        return Err(ReplayError::NoDomain(shown));
    }
    Ok(report)
}

/// Applies one log record: sets up the domain, loads frame contents, or replays an operation
/// and compares its event with the logged one.
fn apply(
    line: &str,
    lineno: usize,
    state: &mut State,
    report: &mut ReplayReport,
) -> Result<(), String> {
    let rec: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let ev = rec["event"].as_str().unwrap_or("").to_string();
    if ev == "domain" {
        let nr = num(&rec, "nr_frames")?;
        let policy: Policy =
            serde_json::from_value(rec["policy"].clone()).map_err(|e| e.to_string())?;
        let m2p: Vec<u64> =
            serde_json::from_value(rec["m2p"].clone()).map_err(|e| e.to_string())?;
        let regions: Vec<Region> =
            serde_json::from_value(rec["regions"].clone()).map_err(|e| e.to_string())?;
        let rules = match rec.get("rules") {
            Some(r) => Rules {
                l1_disallow: num(r, "l1_disallow")?,
                linear_pt: r["linear_pt"].as_bool().ok_or("rules without linear_pt")?,
            },
            None => Rules::default(),
        };
        let mut v = Validator::with_rules(nr, policy, rules);
        v.set_m2p(m2p);
        v.set_regions(regions);
        *state = Some((v, VecFrames::new(nr)));
        return Ok(());
    }
    let Some((v, mem)) = state.as_mut() else {
        return Err("record before the domain record".into());
    };
    let r: Result<(), XenError> = match ev.as_str() {
        "frames" => {
            for f in rec["frames"]
                .as_array()
                .ok_or("frames record without frames")?
            {
                let mfn = num(f, "mfn")?;
                if mfn >= GuestFrames::nr_frames(mem) {
                    return Err(format!("frame {mfn:#x} outside the domain"));
                }
                let frame = mem.frame_mut(mfn);
                frame.fill(0);
                for e in f["entries"].as_array().ok_or("frame without entries")? {
                    let slot = e[0].as_u64().ok_or("bad entry")? as usize;
                    let val = e[1].as_u64().ok_or("bad entry")?;
                    *frame.get_mut(slot).ok_or("slot out of range")? = val;
                }
            }
            return Ok(());
        }
        "register_initial" => v.register_initial(mem, num(&rec, "l4")?),
        "pin" => v.pin(mem, num(&rec, "level")? as u32, num(&rec, "mfn")?),
        "unpin" => v.unpin(mem, num(&rec, "mfn")?),
        "new_baseptr" => v.new_baseptr(mem, num(&rec, "mfn")?),
        "mmu_update" => v.mmu_update(
            mem,
            MmuUpdate {
                ptr: num(&rec, "ptr")?,
                val: num(&rec, "val")?,
            },
        ),
        "machphys_update" => v.mmu_update(
            mem,
            MmuUpdate {
                ptr: (num(&rec, "mfn")? << 12) | pagetable_validator::abi::mmu::MACHPHYS_UPDATE,
                val: num(&rec, "pfn")?,
            },
        ),
        "update_va_mapping" => v.update_va_mapping(
            mem,
            num(&rec, "va")?,
            num(&rec, "val")?,
            num(&rec, "flags")?,
        ),
        _ => return Ok(()), // VMM records (refusals, faults, flushes, end)
    };
    report.operations += 1;
    let events = v.drain_events();
    let got: Vec<Value> = events
        .iter()
        .map(|e| comparable(serde_json::to_value(e).unwrap_or(Value::Null)))
        .collect();
    let want = comparable(rec.clone());
    if got.len() != 1 || got[0] != want {
        report.mismatches.push(format!(
            "line {}: logged {want}\n  replayed ({}) {}",
            lineno,
            r.err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "ok".into()),
            got.iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        ));
    }
    Ok(())
}
