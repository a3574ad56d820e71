//! Structured events: one per operation, carrying Xen's log lines, the result and,
//! for stray-writable refusals, the provenance of every offending mapping.
//!
//! Serialised as JSON Lines (one object per event, tagged `"event": "pin" | …`);
//! `Display` renders Xen-style lines followed by provenance.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Mfn, PageType};
use crate::xenlog::hex5;

/// One Xen debug-log line (`arch/x86/mm.c:LINE:d0v0 TEXT`). `line` 0 = unknown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct XenMsg {
    pub file: String,
    pub line: u32,
    pub text: String,
}

impl fmt::Display for XenMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}:???:d0v0 {}", self.file, self.text)
        } else {
            write!(f, "{}:{}:d0v0 {}", self.file, self.line, self.text)
        }
    }
}

/// The operation an event records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Op {
    RegisterInitial {
        l4: Mfn,
    },
    Pin {
        level: u32,
        mfn: Mfn,
        pfn: Option<u64>,
    },
    Unpin {
        mfn: Mfn,
        pfn: Option<u64>,
    },
    NewBaseptr {
        mfn: Mfn,
        old: Option<Mfn>,
    },
    /// `MMUEXT_NEW_USER_BASEPTR` (mfn 0: no user tables).
    NewUserBaseptr {
        mfn: Mfn,
        old: Option<Mfn>,
    },
    /// One `mmu_update` request. `level` is the level of the table written
    /// (0 = a plain, non-pagetable frame; the write is unvalidated like Xen's).
    MmuUpdate {
        ptr: u64,
        val: u64,
        table: Mfn,
        slot: u16,
        level: u32,
        old: u64,
        new: u64,
    },
    MachphysUpdate {
        mfn: Mfn,
        pfn: u64,
    },
    UpdateVaMapping {
        va: u64,
        val: u64,
        flags: u64,
        l1: Option<Mfn>,
        slot: u16,
        old: u64,
        new: u64,
    },
    /// `HYPERVISOR_set_gdt`: the frames asked for (at most 16) and the entries.
    SetGdt {
        frames: Vec<Mfn>,
        entries: u32,
    },
    /// `HYPERVISOR_update_descriptor`; `stored` is the value written (Xen's
    /// fixed-up descriptor), `None` if refused.
    UpdateDescriptor {
        maddr: u64,
        desc: u64,
        stored: Option<u64>,
    },
}

/// What kind of writable-mapping conflict a violation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViolationKind {
    /// The frame had to become a pagetable but is still mapped writable
    /// (pin → -EINVAL "Bad type").
    StrayWritable,
    /// A writable mapping of a frame that is a pagetable was requested
    /// (-EBUSY "Could not get page type PGT_writable_page").
    WritableMappingOfPagetable,
}

/// A virtual address at which a mapping is reachable, and through which root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaRef {
    pub va: u64,
    /// Name of the caller-supplied region containing `va`, if any.
    pub region: Option<String>,
    /// The L4 (current base or a pinned L4) through which `va` reaches the slot.
    pub root: Mfn,
}

/// One L1 slot that maps the frame writable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrayMapping {
    pub l1: Mfn,
    pub slot: u16,
    pub pte: u64,
    /// Every VA at which this slot is reachable through validated tables from the
    /// current base and the pinned L4s (at most 32 listed, see `more_vas`).
    pub vas: Vec<VaRef>,
    pub more_vas: usize,
    /// True for the mapping this very operation tried to create.
    pub requested: bool,
}

/// A writable-mapping rule violation with its provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    pub frame: Mfn,
    pub pfn: Option<u64>,
    /// Type the frame had / the type that was requested.
    pub had: PageType,
    pub wanted: PageType,
    pub frame_pinned: bool,
    /// Audit policy: recorded and then allowed.
    pub tolerated: bool,
    pub mappings: Vec<StrayMapping>,
}

/// One validator operation: what was asked, Xen's log lines, the result, and any
/// writable-mapping violations with provenance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub seq: u64,
    #[serde(flatten)]
    pub op: Op,
    /// 0 or a negative errno, as returned to the guest.
    pub rc: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub xen_log: Vec<XenMsg>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<Violation>,
}

fn pfn_str(pfn: Option<u64>) -> String {
    hex5(pfn.unwrap_or(u64::MAX))
}

impl Event {
    /// One line naming the operation and its result.
    pub fn summary(&self) -> String {
        let what = match &self.op {
            Op::RegisterInitial { l4 } => format!("register_initial L4 mfn {}", hex5(*l4)),
            Op::Pin { level, mfn, pfn } => {
                format!("pin_l{level} mfn {} (pfn {})", hex5(*mfn), pfn_str(*pfn))
            }
            Op::Unpin { mfn, pfn } => format!("unpin mfn {} (pfn {})", hex5(*mfn), pfn_str(*pfn)),
            Op::NewBaseptr { mfn, old } => match old {
                Some(o) => format!("new_baseptr mfn {} (was {})", hex5(*mfn), hex5(*o)),
                None => format!("new_baseptr mfn {}", hex5(*mfn)),
            },
            Op::NewUserBaseptr { mfn, old } => match old {
                Some(o) => format!("new_user_baseptr mfn {} (was {})", hex5(*mfn), hex5(*o)),
                None => format!("new_user_baseptr mfn {}", hex5(*mfn)),
            },
            Op::MmuUpdate {
                table,
                slot,
                level,
                old,
                new,
                ..
            } => {
                let lv = if *level == 0 {
                    "data".to_string()
                } else {
                    format!("L{level}")
                };
                format!(
                    "mmu_update {lv} mfn {}[{slot}] {old:016x} -> {new:016x}",
                    hex5(*table)
                )
            }
            Op::MachphysUpdate { mfn, pfn } => {
                format!("machphys_update mfn {} -> pfn {}", hex5(*mfn), hex5(*pfn))
            }
            Op::UpdateVaMapping {
                va,
                l1,
                slot,
                old,
                new,
                ..
            } => match l1 {
                Some(l1) => format!(
                    "update_va_mapping va {va:x} (L1 mfn {}[{slot}]) {old:016x} -> {new:016x}",
                    hex5(*l1)
                ),
                None => format!("update_va_mapping va {va:x} (no L1 maps it)"),
            },
            Op::SetGdt { frames, entries } => {
                let list: Vec<String> = frames.iter().map(|&m| hex5(m)).collect();
                format!("set_gdt {entries} entries, mfns [{}]", list.join(", "))
            }
            Op::UpdateDescriptor {
                maddr,
                desc,
                stored,
            } => match stored {
                Some(s) if s != desc => {
                    format!("update_descriptor ma {maddr:x} {desc:016x} (stored {s:016x})")
                }
                _ => format!("update_descriptor ma {maddr:x} {desc:016x}"),
            },
        };
        format!("{what} = {}", self.rc)
    }
}

impl fmt::Display for VaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "va {:016x} [{}]",
            self.va,
            self.region.as_deref().unwrap_or("unnamed")
        )
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let frame = format!("mfn {} (pfn {})", hex5(self.frame), pfn_str(self.pfn));
        if self.tolerated {
            writeln!(
                f,
                "audit: tolerated {} as {:?} of {frame}",
                match self.kind {
                    ViolationKind::StrayWritable => "stray writable mapping(s)",
                    ViolationKind::WritableMappingOfPagetable => "writable mapping",
                },
                self.wanted
            )?;
        }
        if self.mappings.is_empty() {
            return write!(f, "provenance: {frame}: no writable mapping found");
        }
        for (i, m) in self.mappings.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            match self.kind {
                ViolationKind::StrayWritable => write!(
                    f,
                    "provenance: {frame} still mapped RW by L1 mfn {:x} slot {}",
                    m.l1, m.slot
                )?,
                ViolationKind::WritableMappingOfPagetable => write!(
                    f,
                    "provenance: {frame} is {}an {:?} pagetable; RW mapping requested by L1 mfn {:x} slot {}",
                    if self.frame_pinned { "pinned, " } else { "" },
                    self.had,
                    m.l1,
                    m.slot
                )?,
            }
            if m.vas.is_empty() {
                write!(f, " (not reachable from the current base or a pinned L4)")?;
            } else {
                write!(f, " at ")?;
                for (j, va) in m.vas.iter().enumerate() {
                    if j > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{va}")?;
                }
                if m.more_vas > 0 {
                    write!(f, " and {} more", m.more_vas)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Event {
    /// Xen-style lines, then provenance; a one-line summary if there is neither.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.xen_log.is_empty() && self.violations.is_empty() {
            return write!(f, "{}", self.summary());
        }
        let mut first = true;
        for m in &self.xen_log {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{m}")?;
        }
        for v in &self.violations {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{v}")?;
        }
        Ok(())
    }
}
