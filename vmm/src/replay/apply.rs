//! Re-running a log's records: the phases of a replay (domain record, m2p, operations), the
//! frame contents and VMM writes applied to the in-memory frames, and every operation run
//! through the fresh validator with its event compared to the logged one.

use super::reader::{domain, get, unhex, Domain};
use super::ReplayReport;
use crate::log_record::{self, LogRecord, OpRecord, VmmRecord};
use crate::logging::M2P_PER_RECORD;
use pagetable_validator::abi::{self, MmuUpdate};
use pagetable_validator::pte::{self, PAGE_SIZE};
use pagetable_validator::{GuestFrames, Mfn, Op, Validator, VecFrames};
use serde::Deserialize;
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

/// The comparable part of an operation record: everything the validator wrote, without the
/// context the VMM added and the sequence number. Accessed/dirty bits in the `old`/`new` entry
/// values are masked: the CPU sets them in live tables behind everyone's back (and
/// MMU_PT_UPDATE_PRESERVE_AD carries them over), so no log can predict them.
fn comparable(mut r: OpRecord) -> OpRecord {
    const AD: u64 = pte::_PAGE_ACCESSED | pte::_PAGE_DIRTY;
    r.seq = 0;
    r.hypercall.clear();
    r.rip = 0;
    r.provenance = None;
    if let Op::MmuUpdate { old, new, .. } | Op::UpdateVaMapping { old, new, .. } = &mut r.op {
        *old &= !AD;
        *new &= !AD;
    }
    r
}

/// A short form of a record for messages.
fn brief(r: &impl serde::Serialize) -> String {
    let s = serde_json::to_value(r).map_or_else(|e| e.to_string(), |v| v.to_string());
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
        let n = self.check_sequence(&rec, lineno)?;
        let ev = get(&rec, "event")?
            .as_str()
            .ok_or("\"event\" is not a string")?
            .to_string();
        if self.ended {
            self.report.integrity.push(format!(
                "line {lineno}: a {ev:?} record after the end record"
            ));
        }
        let r = LogRecord::deserialize(&rec).map_err(|e| log_record::explain(&rec, &e))?;
        match std::mem::take(&mut self.phase) {
            Phase::Start => {
                let LogRecord::Vmm(VmmRecord::Domain(d)) = r else {
                    return Err(format!(
                        "the first record must be the domain record, not {ev:?}"
                    ));
                };
                self.phase = Phase::M2p {
                    dom: domain(d)?,
                    m2p: Vec::new(),
                };
                Ok(())
            }
            Phase::M2p { dom, mut m2p } => {
                if let LogRecord::Vmm(VmmRecord::M2p { start, m2p: chunk }) = r {
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
                    m2p.extend(chunk);
                    self.phase = Phase::M2p { dom, m2p };
                    return Ok(());
                }
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
                self.op(&ev, r, n, lineno)
            }
            Phase::Ops { v, mem } => {
                self.phase = Phase::Ops { v, mem };
                self.op(&ev, r, n, lineno)
            }
        }
    }

    /// A record after the m2p (record number `n`): frame contents, a VMM write, or an operation
    /// to replay.
    fn op(&mut self, ev: &str, r: LogRecord, n: u64, lineno: u64) -> Result<(), String> {
        let Phase::Ops { v, mem } = &mut self.phase else {
            unreachable!("called in the Ops phase")
        };
        let v: &mut Validator = v;
        let logged = match r {
            LogRecord::Vmm(r) => return self.vmm_record(ev, r, n, lineno),
            LogRecord::Unknown(kind) => {
                self.report.integrity.push(format!(
                    "line {lineno}: unknown record kind {kind:?} (ignored)"
                ));
                return Ok(());
            }
            LogRecord::Op(r) => *r,
        };
        let res = match logged.op {
            Op::RegisterInitial { l4 } => v.register_initial(mem, l4),
            Op::Pin { level, mfn, .. } => v.pin(mem, level, mfn),
            Op::Unpin { mfn, .. } => v.unpin(mem, mfn),
            Op::NewBaseptr { mfn, .. } => v.new_baseptr(mem, mfn),
            Op::NewUserBaseptr { mfn, .. } => v.new_user_baseptr(mem, mfn),
            Op::SetGdt {
                ref frames,
                entries,
            } => {
                // Xen's limit: 14 pages of descriptors below its reserved page.
                if frames.len() > 14 {
                    return Err(format!(
                        "\"frames\" has {} entries (at most 14)",
                        frames.len()
                    ));
                }
                v.set_gdt(mem, frames, entries)
            }
            Op::UpdateDescriptor { maddr, desc, .. } => v.update_descriptor(mem, maddr, desc),
            Op::MmuUpdate {
                ptr,
                val,
                level,
                old,
                ..
            } => {
                let req = MmuUpdate { ptr, val };
                self.report.guest_entries += u64::from(seed_plain_entry(v, mem, level, old, req));
                v.mmu_update(mem, req)
            }
            Op::MachphysUpdate { mfn, pfn } => {
                if mfn.0 > u64::MAX >> 12 {
                    return Err("\"mfn\" out of range".into());
                }
                v.mmu_update(
                    mem,
                    MmuUpdate {
                        ptr: mfn.maddr() | abi::mmu::MACHPHYS_UPDATE,
                        val: pfn,
                    },
                )
            }
            Op::UpdateVaMapping { va, val, flags, .. } => v.update_va_mapping(mem, va, val, flags),
        };
        self.report.operations += 1;
        let got: Vec<OpRecord> = v
            .drain_events()
            .into_iter()
            .map(|e| comparable(OpRecord::new(e, "", 0, |_| Vec::new())))
            .collect();
        let want = comparable(logged);
        if got.len() != 1 || got[0] != want {
            self.report.mismatches.push(format!(
                "line {lineno}: logged {}\n  replayed ({}) {}",
                brief(&want),
                res.err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "ok".into()),
                got.iter().map(brief).collect::<Vec<_>>().join(" | ")
            ));
        }
        Ok(())
    }

    /// A record of the VMM's own (record number `n`): guest memory it wrote, or the end.
    fn vmm_record(&mut self, ev: &str, r: VmmRecord, n: u64, lineno: u64) -> Result<(), String> {
        let Phase::Ops { mem, .. } = &mut self.phase else {
            unreachable!("called in the Ops phase")
        };
        let nr = GuestFrames::nr_frames(mem);
        match r {
            VmmRecord::Frames { frames } => {
                for f in frames {
                    if f.mfn >= nr {
                        return Err(format!(
                            "frame {:#x} outside the domain ({nr} frames)",
                            f.mfn
                        ));
                    }
                    check_entries(&f.entries)?;
                    set_frame(mem, f.mfn, &f.entries);
                }
            }
            VmmRecord::PageWrite { dst, entries, .. } => {
                if dst >= nr {
                    return Err(format!("page_write to frame {dst:#x} outside the domain"));
                }
                check_entries(&entries)?;
                self.check_vmm_write(dst, lineno);
                let Phase::Ops { mem, .. } = &mut self.phase else {
                    unreachable!()
                };
                set_frame(mem, dst, &entries);
            }
            VmmRecord::GuestWrite { gpa, hex } => {
                let bytes = unhex(&hex)?;
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
            }
            VmmRecord::End { records, .. } => {
                self.ended = true;
                if records != n.saturating_add(1) {
                    self.report.integrity.push(format!(
                        "line {lineno}: the end record counts {records} records but is record {n}"
                    ));
                }
            }
            VmmRecord::Oversized { of, bytes } => {
                self.report.mismatches.push(format!(
                    "line {lineno}: a record the VMM could not log (too large): a {of:?} record of {bytes} bytes"
                ));
            }
            // VMM decisions without validator state: nothing to replay.
            VmmRecord::VmmRefusal { .. }
            | VmmRecord::Efault { .. }
            | VmmRecord::Flush { .. }
            | VmmRecord::MemoryOp { .. } => {}
            VmmRecord::Domain(_) | VmmRecord::M2p { .. } => {
                return Err(format!("a second {ev:?} record"));
            }
            VmmRecord::NotVmm => unreachable!("LogRecord's Deserialize never yields it"),
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

/// An `mmu_update` of a plain frame (`level` 0 in the log and here): the entry's previous value
/// is the guest's (it may store there directly), so it is the record's `old`. Returns whether it
/// differed from what replay had.
fn seed_plain_entry(
    v: &Validator,
    mem: &mut VecFrames,
    level: u32,
    old: u64,
    req: MmuUpdate,
) -> bool {
    if req.ptr & 7 == abi::mmu::MACHPHYS_UPDATE || level != 0 {
        return false;
    }
    let (table, slot) = (Mfn(req.ptr >> 12), ((req.ptr & 0xfff) >> 3) as usize);
    let plain = !v
        .frame_info(table)
        .is_some_and(|i| i.validated && i.ty.is_table());
    if !plain || table.0 >= GuestFrames::nr_frames(mem) || mem.read_entry(table, slot) == old {
        return false;
    }
    mem.write_entry(table, slot, old);
    true
}

/// A frame's `[slot, value]` entries: at most 512, slots below 512.
fn check_entries(entries: &[(u64, u64)]) -> Result<(), String> {
    if entries.len() > pte::ENTRIES {
        return Err(format!("{} entries in one frame", entries.len()));
    }
    if entries.iter().any(|&(slot, _)| slot >= pte::ENTRIES as u64) {
        return Err("entry slot not in 0..512".into());
    }
    Ok(())
}

/// Frame `mfn` holds `entries` (checked) and zeros.
fn set_frame(mem: &mut VecFrames, mfn: u64, entries: &[(u64, u64)]) {
    let frame = mem.frame_mut(Mfn(mfn));
    frame.fill(0);
    for &(slot, val) in entries {
        frame[slot as usize] = val;
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
