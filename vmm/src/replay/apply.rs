//! Re-running a log's records: the phases of a replay (domain record, m2p, operations), the
//! frame contents and VMM writes applied to the in-memory frames, and every operation run
//! through the fresh validator with its event compared to the logged one.

use super::reader::{array, domain, get, num, parse_entries, unhex, Domain};
use super::ReplayReport;
use crate::logging::{event_value, M2P_PER_RECORD};
use pagetable_validator::abi::{self, MmuUpdate};
use pagetable_validator::pte::{self, PAGE_SIZE};
use pagetable_validator::Mfn;
use pagetable_validator::{GuestFrames, Validator, VecFrames};
use serde_json::Value;

#[derive(Default)]
pub(super) enum Phase {
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
pub(super) struct Replayer {
    pub(super) phase: Phase,
    pub(super) next_rec: u64,
    pub(super) ended: bool,
    pub(super) report: ReplayReport,
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
    pub(super) fn apply(&mut self, rec: Value, lineno: u64) -> Result<(), String> {
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
                if let Some(x) = dom.xen {
                    v.set_xen_l4_slots(x.l4_slots, x.ro_mpt);
                    for f in x.shared {
                        v.share_xen_frame(Mfn(f));
                    }
                }
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
            "register_initial" => v.register_initial(mem, Mfn(num(&rec, "l4")?)),
            "pin" => {
                let level = u32::try_from(num(&rec, "level")?)
                    .map_err(|_| "\"level\" out of range".to_string())?;
                v.pin(mem, level, Mfn(num(&rec, "mfn")?))
            }
            "unpin" => v.unpin(mem, Mfn(num(&rec, "mfn")?)),
            "new_baseptr" => v.new_baseptr(mem, Mfn(num(&rec, "mfn")?)),
            "new_user_baseptr" => v.new_user_baseptr(mem, Mfn(num(&rec, "mfn")?)),
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
                            .map(Mfn)
                            .ok_or_else(|| "a GDT frame is not a number".to_string())
                    })
                    .collect::<Result<Vec<Mfn>, String>>()?;
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
        if v.frame_info(Mfn(mfn))
            .is_some_and(|i| i.validated && i.ty.is_table())
        {
            self.report.mismatches.push(format!(
                "line {lineno}: the VMM wrote into mfn {mfn:#x}, a validated {:?} table",
                v.page_type(Mfn(mfn))
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
    let (table, slot) = (Mfn(req.ptr >> 12), ((req.ptr & 0xfff) >> 3) as usize);
    let plain = !v
        .frame_info(table)
        .is_some_and(|i| i.validated && i.ty.is_table());
    let Some(old) = rec.get("old").and_then(Value::as_u64) else {
        return false;
    };
    if !plain || table.0 >= GuestFrames::nr_frames(mem) || mem.read_entry(table, slot) == old {
        return false;
    }
    mem.write_entry(table, slot, old);
    true
}

fn set_frame(mem: &mut VecFrames, mfn: u64, entries: &[(usize, u64)]) {
    let frame = mem.frame_mut(Mfn(mfn));
    frame.fill(0);
    for &(slot, val) in entries {
        frame[slot] = val;
    }
}

/// Bytes at offset `off` of frame `mfn` (inside the frame: checked by the caller).
fn write_bytes(mem: &mut VecFrames, mfn: u64, off: usize, bytes: &[u8]) {
    let frame = mem.frame_mut(Mfn(mfn));
    for (i, &b) in bytes.iter().enumerate() {
        let at = off + i;
        let (slot, shift) = (at / 8, (at % 8) * 8);
        frame[slot] = (frame[slot] & !(0xff << shift)) | (u64::from(b) << shift);
    }
}
